using System.CommandLine;
using Jetpack.Protocol.Security;

namespace Jetpack.Cli.CommandLine;

/// <summary>
/// --tls-cert / --tls-key / --tls-ca: this process's certificate and the cluster CA (PEM, as
/// `jetpack certs issue` writes them). Given, every connection it makes or serves is mutual TLS
/// (<see cref="ClusterTls"/>); the environment variables are what the k8s manifests set.
/// </summary>
public static class TlsOptions
{
    public static readonly Option<string?> Cert = new("--tls-cert")
    {
        Description = $"this node's certificate (PEM, tls.crt of `jetpack certs issue`); with --tls-key and --tls-ca every connection is mutual TLS (default: ${ClusterTls.CertEnv})",
    };

    public static readonly Option<string?> Key = new("--tls-key") { Description = $"the certificate's private key (PEM, tls.key) (default: ${ClusterTls.KeyEnv})" };

    public static readonly Option<string?> Ca = new("--tls-ca")
    {
        Description = $"the cluster CA (PEM, ca.crt): the only trust anchor; peers must present a certificate it issued (default: ${ClusterTls.CaEnv})",
    };

    public static readonly Option<bool> MetricsTls = new("--metrics-tls")
    {
        Description = "serve /metrics, /healthz and /readyz over TLS too, requiring a client certificate from the CA (Prometheus: tls_config with cert_file, key_file, ca_file)",
    };

    public static IEnumerable<Option> All => [Cert, Key, Ca];

    /// <summary>The configured TLS, or null (h2c); some but not all of the three is an error naming what is missing.</summary>
    public static ClusterTls? Resolve(ParseResult r) => ClusterTls.Resolve(r.GetValue(Cert), r.GetValue(Key), r.GetValue(Ca));
}
