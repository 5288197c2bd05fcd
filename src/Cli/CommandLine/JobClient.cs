using System.CommandLine;
using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Security;

namespace Jetpack.Cli.CommandLine;

/// <summary>Options and the gRPC client shared by submit / status / watch / cancel / list.</summary>
public static class JobClient
{
    public static readonly Option<string> Coordinator = new("--coordinator")
    {
        Description = "JobService address of the coordinator (default: $JETPACK_COORDINATOR, else http://127.0.0.1:5080)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("JETPACK_COORDINATOR") is { Length: > 0 } c ? c : "http://127.0.0.1:5080",
    };

    public static readonly Option<string?> TokenFile = new("--token-file")
    {
        Description = "file holding the cluster token (default: $JETPACK_CLUSTER_TOKEN)",
    };

    public static readonly Option<double> Timeout = new("--timeout")
    {
        Description = "seconds to wait for the coordinator per call (watch: per update)",
        DefaultValueFactory = _ => 30,
    };

    public static IEnumerable<Option> All => [Coordinator, TokenFile, Timeout];

    /// <summary>
    /// The token from --token-file, else $JETPACK_CLUSTER_TOKEN, else none (unset). An empty or blank token
    /// is refused naming its file or variable (issue 12): a coordinator given an empty file used to run
    /// with authentication silently off.
    /// </summary>
    public static string? Token(string? tokenFile)
    {
        if (tokenFile is not null)
        {
            if (!File.Exists(tokenFile)) throw new FileNotFoundException($"token file not found: {tokenFile}", tokenFile);
            return Checked(File.ReadAllText(tokenFile), $"--token-file {tokenFile}");
        }
        return Environment.GetEnvironmentVariable(ClusterToken.EnvVariable) is { } t ? Checked(t, ClusterToken.EnvVariable) : null;
    }

    static string Checked(string token, string origin)
    {
        if (string.IsNullOrWhiteSpace(token))
            throw new ArgumentException($"{origin}: the cluster token is empty; refusing to run without one (put the token there, or for an open test coordinator give no --token-file and unset {ClusterToken.EnvVariable})");
        try { return new ClusterToken(token).Value; }
        catch (ArgumentException e) { throw new ArgumentException($"{origin}: {e.Message}", e); }
    }

    public sealed record Connection(GrpcChannel Channel, JobService.JobServiceClient Client, Metadata Headers, TimeSpan Timeout, string Address) : IDisposable
    {
        public CallOptions Call(CancellationToken cancel = default, bool stream = false) =>
            new(Headers, stream ? null : DateTime.UtcNow + Timeout, cancel);

        public void Dispose() => Channel.Dispose();
    }

    public static Connection Connect(ParseResult r)
    {
        string address = r.GetValue(Coordinator)!;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"--coordinator: '{address}' is not an http:// or https:// address");
        double seconds = r.GetValue(Timeout);
        if (seconds <= 0) throw new ArgumentException($"--timeout must be > 0, got {seconds}");
        var headers = new Metadata();
        if (Token(r.GetValue(TokenFile)) is { } token) headers.Add("authorization", "Bearer " + token);
        var channel = GrpcChannel.ForAddress(uri);
        return new Connection(channel, new JobService.JobServiceClient(channel), headers, TimeSpan.FromSeconds(seconds), address);
    }

    /// <summary>Runs a call; an unreachable coordinator names the address.</summary>
    public static async Task<T> Invoke<T>(Connection c, Func<Connection, Task<T>> call)
    {
        try
        {
            return await call(c);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            throw new RpcException(new Status(e.StatusCode, $"coordinator at {c.Address} not reachable: {e.Status.Detail}"));
        }
        catch (RpcException e) when (NotGrpc(e))
        {
            // e.g. the coordinator's HTTP/1.1 metrics port: the address answers, but not as a JobService (exit 3, not 1).
            throw new RpcException(new Status(StatusCode.Unavailable, $"{c.Address} is not a jetpack coordinator's JobService, or unreachable: {e.Status.Detail}"));
        }
    }

    /// <summary>The call never reached a gRPC service: the client's transport failed or the reply was not gRPC
    /// (a server's own failure comes back as a status with trailers, not as these).</summary>
    static bool NotGrpc(RpcException e) =>
        e.StatusCode == StatusCode.Unimplemented // another gRPC server (a worker?) without the JobService
        || e.StatusCode is StatusCode.Internal or StatusCode.Unknown
        && (e.Status.DebugException is HttpRequestException or IOException
            || e.Status.Detail.StartsWith("Bad gRPC response", StringComparison.Ordinal)
            || e.Status.Detail.StartsWith("Error starting gRPC call", StringComparison.Ordinal));

    /// <summary>"top-1 81.20%  top-5 99.00%  eval loss 0.5123 (step 200, 5000 images)".</summary>
    public static string Evaluation(Jetpack.Protocol.Jobs.Evaluation e) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"top-1 {100 * e.Top1:F2}%  top-5 {100 * e.Top5:F2}%  eval loss {e.Loss:F4} (step {e.Step}, {e.Images} images)");

    public static string Describe(JobStatus s)
    {
        string phase = s.Phase.ToString();
        var parts = new List<string> { $"{s.JobId}", phase.ToLowerInvariant() };
        if (s.TotalSteps > 0 && (s.Phase == JobPhase.Training || s.Step > 0)) parts.Add($"step {s.Step}/{s.TotalSteps}");
        if (!double.IsNaN(s.Loss) && s.Step > 0) parts.Add($"loss {s.Loss:F4}");
        if (s.ImagesPerSecond > 0) parts.Add($"images/s {s.ImagesPerSecond:F1}");
        if (s.Workers.Count > 0) parts.Add($"workers {s.Workers.Count}");
        if (s.LastEval is { } e) parts.Add(Evaluation(e));
        if (s.Recoveries > 0) parts.Add($"recoveries {s.Recoveries}");
        if (s.FinalModel.Length > 0) parts.Add($"model {s.FinalModel}");
        if (s.Message.Length > 0) parts.Add($"— {s.Message}");
        return string.Join("  ", parts);
    }
}
