using System.CommandLine;
using Grpc.Core;
using Grpc.Core.Interceptors;
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
        Description = "file holding the cluster token (default: $JETPACK_CLUSTER_TOKEN, else the file $JETPACK_CLUSTER_TOKEN_FILE names)",
    };

    public static readonly Option<double> Timeout = new("--timeout")
    {
        Description = "seconds to wait for the coordinator per call (watch: per update)",
        DefaultValueFactory = _ => 30,
    };

    public static IEnumerable<Option> All => [Coordinator, TokenFile, Timeout, .. TlsOptions.All];

    /// <summary>The token from --token-file, else the environment (<see cref="ClusterToken.ResolveOptional"/>), else none.</summary>
    public static ClusterToken? Token(string? tokenFile) => ClusterToken.ResolveOptional(tokenFile);

    /// <param name="Invoker">the channel with the cluster token on every call: build any other client of the coordinator on it</param>
    public sealed record Connection(GrpcChannel Channel, CallInvoker Invoker, JobService.JobServiceClient Client, TimeSpan Timeout, string Address, bool Tls) : IDisposable
    {
        public CallOptions Call(CancellationToken cancel = default, bool stream = false) =>
            new(null, stream ? null : DateTime.UtcNow + Timeout, cancel);

        public void Dispose() => Channel.Dispose();
    }

    public static Connection Connect(ParseResult r)
    {
        string address = r.GetValue(Coordinator)!;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"--coordinator: '{address}' is not an http:// or https:// address");
        double seconds = r.GetValue(Timeout);
        if (seconds <= 0) throw new ArgumentException($"--timeout must be > 0, got {seconds}");
        var token = Token(r.GetValue(TokenFile));
        var tls = TlsOptions.Resolve(r);
        if (tls is not null && uri.Scheme != "https") throw new ArgumentException($"--coordinator: '{address}': with --tls-cert the address is https://");
        var channel = ClusterTls.Channel(uri, tls);
        CallInvoker invoker = token is null ? channel.CreateCallInvoker() : channel.Intercept(new ClusterTokenCallInterceptor(token));
        return new Connection(channel, invoker, new JobService.JobServiceClient(invoker), TimeSpan.FromSeconds(seconds), address, tls is not null);
    }

    /// <summary>Runs a call; an unreachable coordinator names the address, a refused TLS handshake says TLS (exit 7).</summary>
    public static async Task<T> Invoke<T>(Connection c, Func<Connection, Task<T>> call)
    {
        try
        {
            return await call(c);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded || NotGrpc(e))
        {
            if (ClusterTls.IsTlsFailure(e.Status.DebugException) || ClusterTls.IsTlsFailure(new IOException(e.Status.Detail)))
                throw new System.Security.Authentication.AuthenticationException(
                    $"TLS: the connection to the coordinator at {c.Address} failed: {e.Status.Detail} " +
                    (c.Tls ? "(the coordinator must present a certificate from --tls-ca and accept --tls-cert's: both from the same `jetpack certs init` CA)"
                           : "(an https:// coordinator needs --tls-cert, --tls-key and --tls-ca)"), e);
            // Connected, then closed without an answer: a TLS-only coordinator called in cleartext hangs up like this.
            string hint = !c.Tls && !Refused(e.Status.DebugException) ? " (a coordinator with TLS needs https:// and --tls-cert, --tls-key, --tls-ca)" : "";
            if (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                throw new RpcException(new Status(e.StatusCode, $"coordinator at {c.Address} not reachable{hint}: {e.Status.Detail}"));
            // e.g. the coordinator's HTTP/1.1 metrics port: the address answers, but not as a JobService (exit 3, not 1).
            throw new RpcException(new Status(StatusCode.Unavailable, $"{c.Address} is not a jetpack coordinator's JobService, or unreachable{hint}: {e.Status.Detail}"));
        }
    }

    static bool Refused(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is System.Net.Sockets.SocketException) return true;
        return false;
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
