using System.Net; using System.Net.Security; using System.Net.Sockets; using System.Security.Cryptography; using System.Security.Cryptography.X509Certificates; using System.Diagnostics;
var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
var cert = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.Now.AddDays(-1), DateTimeOffset.Now.AddDays(1));
var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); int port = ((IPEndPoint)l.LocalEndpoint).Port;
long total = 256L << 20; int chunk = args.Length > 0 ? int.Parse(args[0]) : 64 << 10; bool tls = args.Length < 2 || args[1] == "tls";
var server = Task.Run(() => { var s = l.AcceptSocket(); Stream st = new NetworkStream(s); if (tls) { var ssl = new SslStream(st); ssl.AuthenticateAsServer(new SslServerAuthenticationOptions { ServerCertificate = cert }); st = ssl; }
  var buf = new byte[chunk]; long got = 0; while (got < total) { int n = st.Read(buf, 0, buf.Length); if (n == 0) break; got += n; } return got; });
var c = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }; c.Connect(IPAddress.Loopback, port); Stream cs = new NetworkStream(c);
if (tls) { var ssl = new SslStream(cs); ssl.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = "x", RemoteCertificateValidationCallback = (_, _, _, _) => true }); cs = ssl; }
var data = new byte[chunk]; var sw = Stopwatch.StartNew(); for (long sent = 0; sent < total; sent += chunk) cs.Write(data, 0, chunk); cs.Flush(); server.Wait(); 
Console.WriteLine($"{(tls ? "tls" : "plain")} chunk {chunk}: {total / sw.Elapsed.TotalSeconds / 1e9:F2} GB/s");
