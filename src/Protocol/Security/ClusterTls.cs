using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using Jetpack.Protocol.Channels;

namespace Jetpack.Protocol.Security;

/// <summary>
/// Mutual TLS of a cluster (DESIGN.md "Trust boundaries"): this node's certificate and key, and the
/// cluster's CA, the only trust anchor (no system roots). Once configured, every plane — the job API,
/// worker control, the gRPC and TCP data planes, optionally /metrics — serves only TLS, requires a
/// client certificate that chains to the CA, and every client presents its own certificate and accepts
/// only a server certificate from the same CA. The cluster token stays as a second factor.
/// Files are PEM in the cert-manager convention (tls.crt, tls.key, ca.crt); <see cref="CertificateAuthority"/> makes them.
/// </summary>
/// <remarks>
/// Names are not checked, only the chain: every certificate of the private CA is a member of the
/// cluster, and members' addresses (pod IPs, namespaces) change more often than certificates do.
/// </remarks>
public sealed class ClusterTls : IDisposable
{
    public const string CertEnv = "JETPACK_TLS_CERT", KeyEnv = "JETPACK_TLS_KEY", CaEnv = "JETPACK_TLS_CA";
    /// <summary>A TLS record starts with this content type (handshake); anything else on a TLS port is plaintext.</summary>
    public const byte HandshakeRecord = 0x16;

    private ClusterTls(X509Certificate2 certificate, X509Certificate2 authority, string certFile, string keyFile, string caFile)
    {
        Certificate = certificate; Authority = authority; CertFile = certFile; KeyFile = keyFile; CaFile = caFile;
        // Kestrel and SslStream send the chain from this context; built once, reused by every handshake.
        ServerContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
    }

    /// <summary>
    /// How the TCP data plane protects tensor bytes once the TLS handshake has authenticated both ends: true (the default),
    /// AES-256-GCM records of up to 1 MiB keyed inside the TLS session ("sealed records", docs/security.md); false, SslStream's
    /// own 16 KiB records all the way. From <see cref="TcpRecordsEnv"/> (<c>sealed</c> or <c>sslstream</c>); the sender chooses,
    /// a receiver accepts both.
    /// </summary>
    public bool SealedTcpRecords { get; set; } = true;

    public const string TcpRecordsEnv = "JETPACK_TLS_TCP_RECORDS";

    /// <summary><see cref="TcpRecordsEnv"/>'s value: sealed (or unset) → true, sslstream → false; anything else is named.</summary>
    public static bool ParseTcpRecords(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "sealed" => true,
        "sslstream" => false,
        _ => throw new ArgumentException($"{TcpRecordsEnv}: '{text}' is not 'sealed' or 'sslstream'"),
    };

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }
    /// <summary>The cluster CA: the one trust anchor.</summary>
    public X509Certificate2 Authority { get; }
    public string CertFile { get; }
    public string KeyFile { get; }
    public string CaFile { get; }
    private SslStreamCertificateContext ServerContext { get; }

    /// <summary>Loads PEM files; a missing or unreadable one is named, and so is a certificate the CA did not issue.</summary>
    public static ClusterTls Load(string certFile, string keyFile, string caFile)
    {
        foreach (var (flag, path) in new[] { ("--tls-cert", certFile), ("--tls-key", keyFile), ("--tls-ca", caFile) })
            if (!File.Exists(path)) throw new FileNotFoundException($"{flag}: file not found: {path}", path);
        X509Certificate2 authority, certificate;
        try { authority = X509CertificateLoader.LoadCertificateFromFile(caFile); }
        catch (CryptographicException e) { throw new InvalidDataException($"--tls-ca {caFile}: not a PEM or DER certificate: {e.Message}", e); }
        try { certificate = X509Certificate2.CreateFromPemFile(certFile, keyFile); }
        catch (CryptographicException e) { authority.Dispose(); throw new InvalidDataException($"--tls-cert {certFile} / --tls-key {keyFile}: not a PEM certificate and its private key: {e.Message}", e); }
        bool sealedRecords;
        try { sealedRecords = ParseTcpRecords(Environment.GetEnvironmentVariable(TcpRecordsEnv)); }
        catch { certificate.Dispose(); authority.Dispose(); throw; }
        var tls = new ClusterTls(certificate, authority, Path.GetFullPath(certFile), Path.GetFullPath(keyFile), Path.GetFullPath(caFile)) { SealedTcpRecords = sealedRecords };
        if (!tls.Validate(certificate, out string problem))
        {
            tls.Dispose();
            throw new InvalidDataException($"--tls-cert {certFile} is not issued by --tls-ca {caFile}: {problem}");
        }
        return tls;
    }

    /// <summary>
    /// From the three flags, else <see cref="CertEnv"/>, <see cref="KeyEnv"/>, <see cref="CaEnv"/> (what the k8s
    /// manifests set); null when none is given (no TLS). Some but not all is an error naming the missing ones.
    /// </summary>
    public static ClusterTls? Resolve(string? certFile, string? keyFile, string? caFile)
    {
        string? Pick(string? flag, string env) => !string.IsNullOrWhiteSpace(flag) ? flag : Environment.GetEnvironmentVariable(env) is { Length: > 0 } v ? v : null;
        var given = new[] { ("--tls-cert", CertEnv, Pick(certFile, CertEnv)), ("--tls-key", KeyEnv, Pick(keyFile, KeyEnv)), ("--tls-ca", CaEnv, Pick(caFile, CaEnv)) };
        if (given.All(g => g.Item3 is null)) return null;
        if (given.Where(g => g.Item3 is null).Select(g => $"{g.Item1} (or {g.Item2})").ToList() is { Count: > 0 } missing)
            throw new ArgumentException($"TLS needs a certificate, its key and the cluster CA: missing {string.Join(", ", missing)}");
        return Load(given[0].Item3!, given[1].Item3!, given[2].Item3!);
    }

    /// <summary>True when <paramref name="presented"/> chains to <see cref="Authority"/> (and only to it) and is valid now.</summary>
    public bool Validate(X509Certificate? presented, out string problem)
    {
        if (presented is null) { problem = "no certificate was presented"; return false; }
        using var leaf = presented as X509Certificate2 is { } c2 ? X509CertificateLoader.LoadCertificate(c2.RawData) : X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;   // the cluster CA, never the system's roots
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;      // a private CA publishes no CRL; rotate certificates instead
        chain.ChainPolicy.DisableCertificateDownloads = true;
        bool built = chain.Build(leaf);
        var root = chain.ChainElements.Count > 0 ? chain.ChainElements[^1].Certificate : null;
        if (built && root is not null && root.RawDataMemory.Span.SequenceEqual(Authority.RawDataMemory.Span))
        {
            problem = "";
            return true;
        }
        string status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0));
        problem = $"certificate '{leaf.Subject}' (issuer '{leaf.Issuer}') does not chain to the cluster CA '{Authority.Subject}'{(status.Length > 0 ? ": " + status : "")}";
        return false;
    }

    /// <summary>Server side of a handshake: this node's certificate, a client certificate required and checked against the CA.</summary>
    /// <param name="refused">told why a client was refused (the log line; the client only sees a TLS alert)</param>
    public SslServerAuthenticationOptions ServerOptions(Action<string> refused, SslApplicationProtocol? alpn = null) => new()
    {
        ServerCertificateContext = ServerContext,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        ApplicationProtocols = alpn is { } p ? [p] : null,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (Validate(certificate, out string problem)) return true;
            refused(certificate is null ? "no client certificate (mTLS requires one issued by the cluster CA)" : problem);
            return false;
        },
    };

    /// <summary>Client side: presents this node's certificate and accepts only a server certificate from the CA.</summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost = "") => new()
    {
        TargetHost = targetHost,
        ClientCertificates = [Certificate],
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => Validate(certificate, out _),
    };

    /// <summary>"https" with TLS, "http" (h2c) without: the scheme of every address a node hands out.</summary>
    public static string Scheme(ClusterTls? tls) => tls is null ? "http" : "https";

    /// <summary>A gRPC channel to <paramref name="address"/>; with TLS the handler presents this node's certificate.</summary>
    public static GrpcChannel Channel(Uri address, ClusterTls? tls)
    {
        if (tls is not null && address.Scheme != "https")
            throw new ArgumentException($"'{address}': TLS is configured (--tls-cert), so the address must be https://");
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { SslOptions = tls?.ClientOptions() ?? new SslClientAuthenticationOptions(), ConnectTimeout = TimeSpan.FromSeconds(10) }.WithKeepAlive(),
        });
    }

    /// <summary>True when the failure is a TLS handshake or certificate failure (for errors that say so).</summary>
    public static bool IsTlsFailure(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is AuthenticationException || e.Message.Contains("SSL", StringComparison.Ordinal) || e.Message.Contains("TLS", StringComparison.Ordinal))
                return true;
        return false;
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Authority.Dispose();
    }
}
