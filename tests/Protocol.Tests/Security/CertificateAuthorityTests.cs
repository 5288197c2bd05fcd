using System.Net;
using Jetpack.Protocol.Security;
using Jetpack.Tests.Security;

namespace Jetpack.Protocol.Tests.Security;

/// <summary>`jetpack certs`: what the CA issues is what <see cref="ClusterTls"/> accepts, and nothing else.</summary>
public sealed class CertificateAuthorityTests : IDisposable
{
    readonly TestCertificates certs = new();

    public void Dispose() => certs.Dispose();

    [Fact]
    public void AnIssuedCertificateChainsToItsCaOnlyAndItsKeyIsPrivate()
    {
        Assert.True(certs.Node.Validate(certs.Node.Certificate, out string ok), ok);
        Assert.False(certs.Node.Validate(certs.Intruder, out string problem));
        Assert.Contains("does not chain to the cluster CA", problem);
        Assert.False(certs.Node.Validate(null, out _));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(certs.KeyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certs.CaDir, CertificateAuthority.CaKey)));
        }
        Assert.Empty(Directory.GetDirectories(certs.NodeDir));                              // no staging left behind
    }

    [Fact]
    public void ACertificateFromAnotherCaIsRefusedAtLoadNamingTheFiles()
    {
        string cert = Path.Combine(certs.IntruderDir, CertificateAuthority.NodeCert), key = Path.Combine(certs.IntruderDir, CertificateAuthority.NodeKey);
        var e = Assert.Throws<InvalidDataException>(() => ClusterTls.Load(cert, key, certs.CaFile));
        Assert.Contains($"--tls-cert {cert} is not issued by --tls-ca {certs.CaFile}", e.Message);
    }

    [Fact]
    public void KeysAndCertificatesAreNeverOverwritten()
    {
        var e = Assert.Throws<ArgumentException>(() => CertificateAuthority.Issue(certs.CaDir, "again", [IPAddress.Loopback], [], certs.NodeDir));
        Assert.Contains("tls.crt exists already", e.Message);
        Assert.Throws<ArgumentException>(() => CertificateAuthority.Init(certs.CaDir));
        Assert.True(certs.Node.Validate(ClusterTls.Load(certs.CertFile, certs.KeyFile, certs.CaFile).Certificate, out _));   // untouched
    }

    [Fact]
    public void PartialTlsConfigurationNamesWhatIsMissing()
    {
        var e = Assert.Throws<ArgumentException>(() => ClusterTls.Resolve(certs.CertFile, null, null));
        Assert.Contains("missing --tls-key (or JETPACK_TLS_KEY), --tls-ca (or JETPACK_TLS_CA)", e.Message);
        Assert.Null(ClusterTls.Resolve(null, null, null));
        Assert.Throws<FileNotFoundException>(() => ClusterTls.Resolve(certs.CertFile + ".missing", certs.KeyFile, certs.CaFile));
    }
}
