// SslStream vs plaintext on one machine, both ends in this process (issue 20). Usage:
//   dotnet run sslstream-ceiling.cs -- CHUNK plain|tls CONNECTIONS [default|128|256|chacha] [array|span|stage]
// 512 MiB over CONNECTIONS loopback connections in CHUNK-byte writes (dedicated threads); "span" writes/reads through
// SslStream's span overloads, "stage" through a 64 KiB staging copy. Prints wall GB/s, process CPU-ns per byte and allocations.
using System.Net; using System.Net.Security; using System.Net.Sockets; using System.Security.Cryptography; using System.Security.Cryptography.X509Certificates; using System.Diagnostics; using System.Security.Authentication;
var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
var cert = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.Now.AddDays(-1), DateTimeOffset.Now.AddDays(1));
cert = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
int chunk = int.Parse(args[0]); string mode = args[1]; int conns = int.Parse(args[2]); string cipher = args.Length > 3 ? args[3] : "default"; string io = args.Length > 4 ? args[4] : "array";
long total = 512L << 20;
CipherSuitesPolicy? pol = !OperatingSystem.IsLinux() ? null : cipher switch { "128" => new CipherSuitesPolicy([TlsCipherSuite.TLS_AES_128_GCM_SHA256]), "256" => new CipherSuitesPolicy([TlsCipherSuite.TLS_AES_256_GCM_SHA384]), "chacha" => new CipherSuitesPolicy([TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256]), _ => null };
var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); int port = ((IPEndPoint)l.LocalEndpoint).Port;
var streams = new List<(Stream c, Stream s)>();
for (int i = 0; i < conns; i++) {
  var acc = l.AcceptSocketAsync();
  var c = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }; c.Connect(IPAddress.Loopback, port);
  var s = await acc; Stream ss = new NetworkStream(s, true), cs = new NetworkStream(c, true);
  if (mode == "tls") {
    var sssl = new SslStream(ss); var cssl = new SslStream(cs);
    var t1 = sssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = cert, CipherSuitesPolicy = pol, EnabledSslProtocols = SslProtocols.Tls13 });
    var t2 = cssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "x", CipherSuitesPolicy = pol, EnabledSslProtocols = SslProtocols.Tls13, RemoteCertificateValidationCallback = (_, _, _, _) => true });
    await Task.WhenAll(t1, t2); if (i == 0) Console.Error.WriteLine(cssl.NegotiatedCipherSuite); ss = sssl; cs = cssl;
  }
  streams.Add((cs, ss));
}
long per = total / conns;
var alloc0 = GC.GetTotalAllocatedBytes(true); var cpu0 = Process.GetCurrentProcess().TotalProcessorTime; var sw = Stopwatch.StartNew();
var tasks = new List<Task>();
foreach (var (cs, ss) in streams) {
  tasks.Add(Task.Factory.StartNew(() => { var buf = new byte[chunk]; var stage = new byte[64 << 10]; long got = 0; while (got < per) { int n;
      if (io == "stage") { n = ss.Read(stage, 0, Math.Min(stage.Length, buf.Length)); stage.AsSpan(0, n).CopyTo(buf); } else if (io == "span") n = ss.Read(buf.AsSpan()); else n = ss.Read(buf, 0, buf.Length);
      if (n == 0) break; got += n; } }, TaskCreationOptions.LongRunning));
  tasks.Add(Task.Factory.StartNew(() => { var data = new byte[chunk]; var stage = new byte[64 << 10]; for (long sent = 0; sent < per; sent += chunk) {
      if (io == "stage") { for (int o = 0; o < chunk; o += stage.Length) { int n = Math.Min(stage.Length, chunk - o); data.AsSpan(o, n).CopyTo(stage); cs.Write(stage, 0, n); } }
      else if (io == "span") cs.Write(new ReadOnlySpan<byte>(data)); else cs.Write(data, 0, chunk); } cs.Flush(); }, TaskCreationOptions.LongRunning));
}
Task.WaitAll(tasks.ToArray());
var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
Console.WriteLine($"{mode} {cipher} {io} conns {conns} chunk {chunk>>10}K: {total / sw.Elapsed.TotalSeconds / 1e9:F2} GB/s wall, {cpu * 1e9 / total:F2} CPU-ns/byte ({total / cpu / 1e9:F2} GB per CPU-second), allocated {(GC.GetTotalAllocatedBytes(true) - alloc0) >> 20} MiB");
