using System.Security.Cryptography;
using System.Text;

namespace Jetpack.Protocol.Security;

/// <summary>
/// The shared secret every gRPC call of a cluster carries as <c>authorization: Bearer &lt;token&gt;</c>
/// (DESIGN.md, "Trust boundaries"; the one scheme of issue 16: <see cref="ClusterTokenInterceptor"/>
/// checks it, <see cref="ClusterTokenCallInterceptor"/> adds it, <see cref="Resolve"/> finds it). It is
/// configured, never compiled in: a file named by a flag, else the <see cref="EnvVariable"/> variable,
/// else a file named by <see cref="EnvFileVariable"/>. With mTLS configured it is the second factor.
/// </summary>
public sealed class ClusterToken
{
    /// <summary>The gRPC metadata key (lower case, as HTTP/2 sends it).</summary>
    public const string MetadataKey = "authorization";
    public const string Scheme = "Bearer ";
    public const string EnvVariable = "JETPACK_CLUSTER_TOKEN";
    public const string EnvFileVariable = "JETPACK_CLUSTER_TOKEN_FILE";
    public const int MinLength = 16;

    private readonly byte[] bytes;
    private readonly byte[] header;

    public ClusterToken(string value)
    {
        value = value.Trim();
        if (value.Length < MinLength) throw new ArgumentException($"the cluster token must have at least {MinLength} characters (got {value.Length})");
        if (value.Any(c => c < 0x21 || c > 0x7e)) throw new ArgumentException("the cluster token must be printable ASCII without spaces (it travels as a gRPC header)");
        Value = value;
        bytes = Encoding.ASCII.GetBytes(value);
        header = Encoding.ASCII.GetBytes(Scheme + value);
    }

    public string Value { get; }

    /// <summary>The <c>authorization</c> header's value: <c>Bearer &lt;token&gt;</c>.</summary>
    public string HeaderValue => Scheme + Value;

    /// <summary>Constant-time comparison of a bare token (the TCP data plane's token frame), so the time to refuse says nothing about the token.</summary>
    public bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(bytes, Encoding.ASCII.GetBytes(presented));

    /// <summary>Constant-time comparison of an <c>authorization</c> header's value against <see cref="HeaderValue"/>.</summary>
    public bool MatchesHeader(string? authorization) =>
        authorization is not null && CryptographicOperations.FixedTimeEquals(header, Encoding.ASCII.GetBytes(authorization));

    public static ClusterToken FromFile(string path) => FromFile(path, path);

    private static ClusterToken FromFile(string path, string origin)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"cluster token file not found: {path}", path);
        try { return Parse(File.ReadAllText(path), origin); }
        catch (ArgumentException e) { throw new InvalidDataException(e.Message, e); }
    }

    /// <summary>A token read from <paramref name="origin"/> (a file or a variable): blank or short is refused naming it.</summary>
    private static ClusterToken Parse(string text, string origin)
    {
        // An empty file or a set-but-blank variable is a mistake (e.g. `export JETPACK_CLUSTER_TOKEN=$(cat missing)`),
        // never "no token": it used to switch authentication off silently (issue 12).
        if (string.IsNullOrWhiteSpace(text))
            throw new ArgumentException($"{origin}: the cluster token is empty (it must have at least {MinLength} characters); refusing to run without one " +
                                        $"(put the token there, or for an open test coordinator give no --token-file and unset {EnvVariable} and {EnvFileVariable})");
        try { return new ClusterToken(text); }
        catch (ArgumentException e) { throw new ArgumentException($"{origin}: {e.Message}", e); }
    }

    /// <summary>
    /// The token from the flag's file, else <see cref="EnvVariable"/>, else the file <see cref="EnvFileVariable"/>
    /// names; null when none of them is given (an open test coordinator, a client of one). A source that is given
    /// but empty, short or missing is an error naming it.
    /// </summary>
    public static ClusterToken? ResolveOptional(string? tokenFile)
    {
        if (!string.IsNullOrEmpty(tokenFile)) return FromFile(tokenFile, $"--token-file {tokenFile}");
        if (Environment.GetEnvironmentVariable(EnvVariable) is { } v) return Parse(v, EnvVariable);
        if (Environment.GetEnvironmentVariable(EnvFileVariable) is { } f)
            return f.Trim().Length > 0 ? FromFile(f, $"{EnvFileVariable}={f}") : throw new ArgumentException($"{EnvFileVariable} is set but empty: name the token file in it, or unset it");
        return null;
    }

    /// <summary>As <see cref="ResolveOptional"/>, for a process that cannot run without a token (a worker); the error says where it looked.</summary>
    public static ClusterToken Resolve(string? tokenFile) =>
        ResolveOptional(tokenFile) ?? throw new InvalidOperationException($"no cluster token: pass --token-file, or set {EnvVariable} or {EnvFileVariable}");

    /// <summary>A fresh random token (the launcher makes one per cluster and hands it over in a file).</summary>
    public static ClusterToken Generate() => new(Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant());
}
