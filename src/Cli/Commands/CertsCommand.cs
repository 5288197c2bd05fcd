using System.CommandLine;
using System.Net;
using Jetpack.Cli.CommandLine;
using Jetpack.Protocol.Security;
using Spectre.Console;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack certs init --out DIR</c> (the cluster CA: ca.crt, ca.key) and <c>jetpack certs issue --ca DIR
/// --name NAME [--ip A]... [--dns D]... --out DIR</c> (a node: tls.crt, tls.key, ca.crt, as cert-manager
/// names them). Every node certificate serves and calls: the coordinator, each worker and each CLI user
/// gets one (docs/operations/certificates.md).
/// </summary>
public static class CertsCommand
{
    static readonly Option<string> Out = new("--out") { Description = "directory to write into (created; existing key or certificate files are never overwritten)", Required = true };
    static readonly Option<int> Days = new("--days") { Description = "validity in days (default: CA 3650, node 365; a node certificate never outlives its CA)" };

    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "the CA's common name", DefaultValueFactory = _ => "jetpack cluster CA" };
        var init = new Command("init", "Make the cluster's CA: DIR/ca.crt and DIR/ca.key (ECDSA P-256, key mode 0600). Keep ca.key off the cluster's nodes.") { Out, name, Days };
        init.SetAction(r =>
        {
            using var ca = CertificateAuthority.Init(r.GetValue(Out)!, r.GetValue(name)!, Validity(r));
            AnsiConsole.MarkupLine($"CA '{Markup.Escape(ca.Subject)}' valid until {ca.NotAfter:yyyy-MM-dd}: {Markup.Escape(Path.Combine(r.GetValue(Out)!, CertificateAuthority.CaCert))}, {CertificateAuthority.CaKey}");
            return ExitCodes.Ok;
        });

        var caDir = new Option<string>("--ca") { Description = "the CA directory of `jetpack certs init`", Required = true };
        var node = new Option<string>("--name") { Description = "the node's name (subject CN; the DNS name when no --ip/--dns is given)", Required = true };
        var ips = new Option<string[]>("--ip") { Description = "an IP address the node is reached at (repeatable)", AllowMultipleArgumentsPerToken = true };
        var dns = new Option<string[]>("--dns") { Description = "a DNS name the node is reached at (repeatable)", AllowMultipleArgumentsPerToken = true };
        var issue = new Command("issue", "Issue a node certificate from the CA: DIR/tls.crt, DIR/tls.key, DIR/ca.crt (server + client use; pass them as --tls-cert, --tls-key, --tls-ca).")
        {
            caDir, node, ips, dns, Out, Days,
        };
        issue.SetAction(r =>
        {
            var addresses = (r.GetValue(ips) ?? []).Select(a => IPAddress.TryParse(a, out var ip) ? ip : throw new ArgumentException($"--ip: '{a}' is not an IP address")).ToList();
            using var cert = CertificateAuthority.Issue(r.GetValue(caDir)!, r.GetValue(node)!, addresses, r.GetValue(dns) ?? [], r.GetValue(Out)!, Validity(r));
            AnsiConsole.MarkupLine($"'{Markup.Escape(cert.Subject)}' issued by '{Markup.Escape(cert.Issuer)}', valid until {cert.NotAfter:yyyy-MM-dd}: " +
                                   $"{Markup.Escape(r.GetValue(Out)!)}/{{{CertificateAuthority.NodeCert}, {CertificateAuthority.NodeKey}, {CertificateAuthority.CaCert}}}");
            return ExitCodes.Ok;
        });
        return new Command("certs", "Certificates for mutual TLS on every plane: a cluster CA and node certificates (PEM; cert-manager file names).") { init, issue };
    }

    static TimeSpan? Validity(ParseResult r) => r.GetValue(Days) switch
    {
        0 => null,
        < 0 and var d => throw new ArgumentException($"--days must be > 0, got {d}"),
        var d => TimeSpan.FromDays(d),
    };
}
