// Sealed records vs plaintext on one loopback connection, both ends in this process (issue 20). Usage:
//   dotnet run sealed-records-probe.cs -- plain|aead [RECORD_KIB]
// 1 GiB in 8 MiB messages; aead seals RECORD_KIB records (default 1024) with AES-256-GCM and opens them in place, as the TCP
// data plane does. Prints wall GB/s and process CPU-ns per byte. Compare with sslstream-ceiling.cs (SslStream's records).
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Buffers.Binary;
string mode = args[0]; int rec = args.Length>1 ? int.Parse(args[1])<<10 : 1<<20;
var l = new Socket(SocketType.Stream, ProtocolType.Tcp); l.Bind(new IPEndPoint(IPAddress.Loopback,0)); l.Listen();
var c = new Socket(SocketType.Stream, ProtocolType.Tcp){NoDelay=true}; c.Connect(l.LocalEndPoint!); var s = l.Accept();
var key = RandomNumberGenerator.GetBytes(32);
long total = 1L<<30; int msg = 8<<20;
var src = new byte[msg]; new Random(1).NextBytes(src);
var proc = Process.GetCurrentProcess(); var cpu0 = proc.TotalProcessorTime;
var sw = Stopwatch.StartNew();
var tx = new Thread(() => {
  using var g = new AesGcm(key,16); var buf = new byte[rec+20]; ulong seq=0; Span<byte> nonce = stackalloc byte[12];
  for (long sent=0; sent<total; sent+=msg) {
    if (mode=="plain") { c.Send(src); continue; }
    for (int off=0; off<msg; off+=rec) { int n=Math.Min(rec,msg-off);
      BinaryPrimitives.WriteInt32LittleEndian(buf, n); BinaryPrimitives.WriteUInt64LittleEndian(nonce, seq++);
      g.Encrypt(nonce, src.AsSpan(off,n), buf.AsSpan(4,n), buf.AsSpan(4+n,16), buf.AsSpan(0,4));
      var span = buf.AsSpan(0, n+20); while(span.Length>0){ int k=c.Send(span); span=span[k..]; } }
  }
});
tx.Start();
var dst = new byte[msg]; using var gd = new AesGcm(key,16); ulong rseq=0; Span<byte> rn = stackalloc byte[12]; Span<byte> hdr = stackalloc byte[4]; Span<byte> tag = stackalloc byte[16];
void Fill(Span<byte> x){ while(x.Length>0){ int k=s.Receive(x); if(k==0) throw new Exception("eof"); x=x[k..]; } }
for (long got=0; got<total; got+=msg) {
  if (mode=="plain") { Fill(dst); continue; }
  for (int off=0; off<msg; ) { Fill(hdr); int n=BinaryPrimitives.ReadInt32LittleEndian(hdr); var d=dst.AsSpan(off,n); Fill(d); Fill(tag);
    BinaryPrimitives.WriteUInt64LittleEndian(rn, rseq++); gd.Decrypt(rn, d, tag, d, hdr); off+=n; }
}
tx.Join();
double secs = sw.Elapsed.TotalSeconds; proc.Refresh(); double cpu=(proc.TotalProcessorTime-cpu0).TotalSeconds;
Console.WriteLine($"{mode} rec {rec>>10} KiB: {total/secs/1e9:F2} GB/s wall, {cpu*1e9/total:F2} CPU-ns/B; equal={dst.AsSpan().SequenceEqual(src)}");
