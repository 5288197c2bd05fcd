using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Jetpack.Protocol.Security;

namespace Jetpack.Tests.Security;

/// <summary>
/// Real certificates in a temporary directory, made by the product's <see cref="CertificateAuthority"/>:
/// the cluster CA with one loopback node certificate (<see cref="Node"/>), and a foreign CA with an
/// <see cref="Intruder"/> certificate that looks the same but chains elsewhere. Shared by the worker and
/// coordinator tests too (linked into their projects).
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public TestCertificates()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("jetpack-tls-test-").FullName;
        CertificateAuthority.Init(CaDir).Dispose();
        CertificateAuthority.Issue(CaDir, "node", [IPAddress.Loopback], ["localhost"], NodeDir).Dispose();
        CertificateAuthority.Init(ForeignCaDir, "foreign CA").Dispose();
        CertificateAuthority.Issue(ForeignCaDir, "intruder", [IPAddress.Loopback], ["localhost"], IntruderDir).Dispose();
        Node = ClusterTls.Load(CertFile, KeyFile, CaFile);
        Intruder = X509Certificate2.CreateFromPemFile(Path.Combine(IntruderDir, CertificateAuthority.NodeCert), Path.Combine(IntruderDir, CertificateAuthority.NodeKey));
    }

    public string Directory { get; }
    public string CaDir => Path.Combine(Directory, "ca");
    public string NodeDir => Path.Combine(Directory, "node");
    public string ForeignCaDir => Path.Combine(Directory, "foreign-ca");
    public string IntruderDir => Path.Combine(Directory, "intruder");
    public string CertFile => Path.Combine(NodeDir, CertificateAuthority.NodeCert);
    public string KeyFile => Path.Combine(NodeDir, CertificateAuthority.NodeKey);
    public string CaFile => Path.Combine(NodeDir, CertificateAuthority.CaCert);

    /// <summary>A node of the cluster: certificate and key from the cluster CA.</summary>
    public ClusterTls Node { get; }
    /// <summary>A certificate (with key) from another CA.</summary>
    public X509Certificate2 Intruder { get; }

    /// <summary>Client TLS that trusts the cluster CA (so only the server's refusal can fail it) and presents <paramref name="clientCertificate"/> (null: none).</summary>
    public SslClientAuthenticationOptions Client(X509Certificate2? clientCertificate) => new()
    {
        TargetHost = "localhost",
        ClientCertificates = clientCertificate is null ? null : [clientCertificate],
        LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
        RemoteCertificateValidationCallback = (_, server, _, _) => Node.Validate(server, out _),
    };

    public SocketsHttpHandler Handler(X509Certificate2? clientCertificate) => new() { SslOptions = Client(clientCertificate), ConnectTimeout = TimeSpan.FromSeconds(10) };

    public void Dispose()
    {
        Node.Dispose();
        Intruder.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
