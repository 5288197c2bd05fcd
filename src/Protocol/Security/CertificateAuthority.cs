using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Jetpack.Protocol.Security;

/// <summary>
/// The cluster's private CA and the node certificates it issues (<c>jetpack certs init / issue</c>),
/// PEM files in the cert-manager convention so that a Kubernetes Secret made by either mounts the same
/// way: a node directory holds <c>tls.crt</c>, <c>tls.key</c> and <c>ca.crt</c>; the CA directory holds
/// <c>ca.crt</c> and <c>ca.key</c>. Keys are ECDSA P-256, written 0600. Every node certificate is both a
/// server and a client certificate (serverAuth + clientAuth), since every node is both on some plane.
/// A directory's files are published all-or-nothing: written beside it, then moved in.
/// </summary>
public static class CertificateAuthority
{
    public const string CaCert = "ca.crt", CaKey = "ca.key", NodeCert = "tls.crt", NodeKey = "tls.key";
    public static readonly TimeSpan CaValidity = TimeSpan.FromDays(3650), NodeValidity = TimeSpan.FromDays(365);
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1"), ClientAuth = new("1.3.6.1.5.5.7.3.2");

    /// <summary>Makes a CA in <paramref name="outDir"/> (ca.crt, ca.key); refuses to overwrite one.</summary>
    public static X509Certificate2 Init(string outDir, string name = "jetpack cluster CA", TimeSpan? validity = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={Escape(name)}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        var ca = request.CreateSelfSigned(now.AddMinutes(-5), now + (validity ?? CaValidity));
        Publish(outDir, new() { [CaCert] = ca.ExportCertificatePem(), [CaKey] = key.ExportPkcs8PrivateKeyPem() });
        return ca;
    }

    /// <summary>
    /// Issues a node certificate signed by the CA in <paramref name="caDir"/> into <paramref name="outDir"/>
    /// (tls.crt, tls.key and a copy of ca.crt). Subject alternative names: the given IPs and DNS names, or
    /// the node's name as a DNS name when none is given.
    /// </summary>
    public static X509Certificate2 Issue(string caDir, string name, IReadOnlyList<IPAddress> ips, IReadOnlyList<string> dnsNames, string outDir, TimeSpan? validity = null)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("--name must not be empty");
        string caCertFile = Path.Combine(caDir, CaCert), caKeyFile = Path.Combine(caDir, CaKey);
        foreach (var f in new[] { caCertFile, caKeyFile })
            if (!File.Exists(f)) throw new FileNotFoundException($"--ca {caDir}: {Path.GetFileName(f)} not found (make a CA with `jetpack certs init --out {caDir}`)", f);
        X509Certificate2 ca;
        try { ca = X509Certificate2.CreateFromPemFile(caCertFile, caKeyFile); }
        catch (CryptographicException e) { throw new InvalidDataException($"--ca {caDir}: {CaCert} and {CaKey} are not a PEM certificate and its key: {e.Message}", e); }
        using (ca)
        {
            if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                throw new InvalidDataException($"--ca {caDir}: {CaCert} is not a CA certificate");
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest(new X500DistinguishedName($"CN={Escape(name)}"), key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth, ClientAuth], critical: false));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
            var san = new SubjectAlternativeNameBuilder();
            foreach (var ip in ips) san.AddIpAddress(ip);
            foreach (var dns in dnsNames) san.AddDnsName(dns);
            if (ips.Count == 0 && dnsNames.Count == 0) san.AddDnsName(name);
            request.CertificateExtensions.Add(san.Build());
            var now = DateTimeOffset.UtcNow;
            var notAfter = now + (validity ?? NodeValidity);
            if (notAfter > ca.NotAfter) notAfter = ca.NotAfter;             // a certificate cannot outlive its issuer
            using var signed = request.Create(ca, now.AddMinutes(-5), notAfter, RandomNumberGenerator.GetBytes(16));
            var node = signed.CopyWithPrivateKey(key);
            Publish(outDir, new() { [NodeCert] = node.ExportCertificatePem(), [NodeKey] = key.ExportPkcs8PrivateKeyPem(), [CaCert] = ca.ExportCertificatePem() });
            return node;
        }
    }

    static string Escape(string name) => name.Replace("\\", "\\\\").Replace(",", "\\,").Replace("+", "\\+").Replace("=", "\\=").Replace("\"", "\\\"");

    /// <summary>Writes every file beside <paramref name="outDir"/>, then moves them in; refuses to overwrite any.</summary>
    static void Publish(string outDir, Dictionary<string, string> files)
    {
        Directory.CreateDirectory(outDir);
        foreach (var name in files.Keys)
            if (File.Exists(Path.Combine(outDir, name))) throw new ArgumentException($"--out {outDir}: {name} exists already (refusing to overwrite a key or certificate)");
        var staging = Directory.CreateDirectory(Path.Combine(outDir, $".staging-{Guid.NewGuid():N}")).FullName;
        try
        {
            foreach (var (name, pem) in files)
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows())                           // a key is never readable by others, not even for a moment
                    options.UnixCreateMode = name.EndsWith(".key", StringComparison.Ordinal) ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                                                                                             : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
                using var writer = new StreamWriter(Path.Combine(staging, name), options);
                writer.Write(pem);
            }
            foreach (var name in files.Keys) File.Move(Path.Combine(staging, name), Path.Combine(outDir, name));
        }
        finally { Directory.Delete(staging, recursive: true); }
    }
}
