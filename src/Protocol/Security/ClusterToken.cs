using System.Security.Cryptography;
using System.Text;

namespace Jetpack.Protocol.Security;

/// <summary>
/// The shared secret every gRPC call of a cluster carries (DESIGN.md, "Trust boundaries"). It is
/// configured, never compiled in: a file named by a flag, else the <see cref="EnvVariable"/>
/// variable, else a file named by <see cref="EnvFileVariable"/>.
/// </summary>
public sealed class ClusterToken
{
    public const string MetadataKey = "x-jetpack-cluster-token";
    public const string EnvVariable = "JETPACK_CLUSTER_TOKEN";
    public const string EnvFileVariable = "JETPACK_CLUSTER_TOKEN_FILE";
    public const int MinLength = 16;

    private readonly byte[] bytes;

    public ClusterToken(string value)
    {
        value = value.Trim();
        if (value.Length < MinLength) throw new ArgumentException($"the cluster token must have at least {MinLength} characters (got {value.Length})");
        if (value.Any(c => c < 0x21 || c > 0x7e)) throw new ArgumentException("the cluster token must be printable ASCII without spaces (it travels as a gRPC header)");
        Value = value;
        bytes = Encoding.ASCII.GetBytes(value);
    }

    public string Value { get; }

    /// <summary>Constant-time comparison, so the time to refuse says nothing about the token.</summary>
    public bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(bytes, Encoding.ASCII.GetBytes(presented));

    public static ClusterToken FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"cluster token file not found: {path}", path);
        try { return new ClusterToken(File.ReadAllText(path)); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>The token from the flag's file, else the environment; an error says where it looked.</summary>
    public static ClusterToken Resolve(string? tokenFile)
    {
        if (!string.IsNullOrEmpty(tokenFile)) return FromFile(tokenFile);
        // A variable that is set but blank is a mistake (e.g. `export JETPACK_CLUSTER_TOKEN=$(cat missing)`):
        // refused naming it, never read as "no token" (issue 12).
        if (Environment.GetEnvironmentVariable(EnvVariable) is { } v)
        {
            try { return new ClusterToken(v); }
            catch (ArgumentException e) { throw new ArgumentException($"{EnvVariable}: {e.Message}", e); }
        }
        if (Environment.GetEnvironmentVariable(EnvFileVariable) is { } f)
            return f.Trim().Length > 0 ? FromFile(f) : throw new ArgumentException($"{EnvFileVariable} is set but empty: name the token file in it, or unset it");
        throw new InvalidOperationException($"no cluster token: pass --token-file, or set {EnvVariable} or {EnvFileVariable}");
    }

    /// <summary>A fresh random token (the launcher makes one per cluster and hands it over in a file).</summary>
    public static ClusterToken Generate() => new(Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant());
}
