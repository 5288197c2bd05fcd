using Jetpack.Application.Runs;
using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Jetpack.Protocol.Channels;
using Jetpack.WorkerCluster;
using Jetpack.Model.Training;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench exchange</c>: the data plane between real worker processes on loopback,
/// measured side by side with raw TCP in the same run — (1) iperf3 (Debian's) loopback throughput,
/// one stream and as many parallel streams as the all-to-all has directed flows; (2) the gRPC
/// all-to-all among 2..4 processes (fp32 pieces, every arrival checked), per data-plane transport; (3) training-step time of
/// a small Jetpack model and of V-JetMoE-T with 2 ranks vs 1 and the fraction of the step spent in
/// the exchange and in the all-reduce.
/// </summary>
public static class BenchExchange
{
    public static Command Create()
    {
        var ranks = new Option<string>("--ranks") { Description = "process counts of the all-to-all", DefaultValueFactory = _ => "2,3,4" };
        var mib = new Option<int>("--mib") { Description = "MiB each rank sends to each peer per round (issue 20 measures 8 MiB messages)", DefaultValueFactory = _ => 8 };
        var rounds = new Option<int>("--rounds") { Description = "timed all-to-all rounds", DefaultValueFactory = _ => 10 };
        var iperfSeconds = new Option<int>("--iperf-seconds") { Description = "duration of each iperf3 run", DefaultValueFactory = _ => 3 };
        var models = new Option<string>("--models") { Description = "variants for the step-time comparison ('' = skip)", DefaultValueFactory = _ => "v_jetmoe_fmnist,v_jetmoe_t" };
        var steps = new Option<int>("--steps") { Description = "training steps per step-time run (the first is not counted)", DefaultValueFactory = _ => 4 };
        var threads = new Option<int>("--threads-per-rank") { Description = "torch threads of each rank in the step-time runs (0 = the cores divided among the ranks)", DefaultValueFactory = _ => 0 };
        var planes = new Option<string>("--data-plane") { Description = "transports to measure, side by side: grpc (HTTP/2 Push streams), grpc-pull (the same frames pulled by the receiver as server streams), tcp (the same headers on raw TCP); a '+tls' suffix (tcp+tls, grpc+tls) runs that plane under mutual TLS with a throw-away CA (the TCP plane in sealed records, its default; tcp+tls-sslstream in SslStream's own records)", DefaultValueFactory = _ => "grpc,tcp" };
        var output = new Option<string>("--out") { Description = "folder for bench-exchange.json", DefaultValueFactory = _ => "results/bench" };
        var chunks = new Option<string>("--grpc-chunk-kib")
        {
            Description = "gRPC message sizes to measure side by side, KiB (each a row; the first is also used for the step-time runs)",
            DefaultValueFactory = _ => "64,1024",
        };
        var netns = new Option<string>("--netns")
        {
            Description = "run the 2 ranks and iperf3 in these Linux network namespaces instead of on loopback: NS0=IP0,NS1=IP1 " +
                          "(made by scripts/bench-netns.sh, which also decides nothing itself: it prints the gRPC/TCP ratio the default follows)",
            DefaultValueFactory = _ => "",
        };
        var repeat = new Option<int>("--repeat")
        {
            Description = "measure every plane this many times, interleaved (tcp, tcp+tls, tcp, tcp+tls, …), and report medians; a TLS/plaintext ratio is the median of the ratios of the same pass (a noisy machine needs 3 or more)",
            DefaultValueFactory = _ => 1,
        };
        var cmd = new Command("exchange", "All-to-all throughput between 2–4 worker processes vs raw TCP loopback (iperf3) in the same run; step time with 2 ranks vs 1 and the exchange / all-reduce share of it.")
        {
            ranks, mib, rounds, iperfSeconds, models, steps, threads, planes, output, netns, chunks, repeat,
        };
        cmd.SetAction(r => Run(r.GetValue(ranks)!, r.GetValue(mib), r.GetValue(rounds), r.GetValue(iperfSeconds), r.GetValue(models)!, r.GetValue(steps),
                               r.GetValue(threads), r.GetValue(planes)!, r.GetValue(output)!, ParseNamespaces(r.GetValue(netns)!),
                               r.GetValue(chunks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(k => int.Parse(k) << 10).ToArray(),
                               r.GetValue(repeat)));
        return cmd;
    }

    /// <summary>"ns0=198.18.0.1,ns1=198.18.0.2" → [(ns0, 198.18.0.1), (ns1, 198.18.0.2)]; "" → null (loopback).</summary>
    static List<(string Name, string Address)>? ParseNamespaces(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var list = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(e =>
        {
            var parts = e.Split('=', 2);
            if (parts.Length != 2 || parts[0].Length == 0 || !IPAddress.TryParse(parts[1], out _))
                throw new ArgumentException($"--netns: '{e}' is not NAMESPACE=IP");
            return (parts[0], parts[1]);
        }).ToList();
        if (list.Count != 2) throw new ArgumentException($"--netns: name exactly 2 namespaces (one per rank), got {list.Count}");
        return list;
    }

    static int Run(string ranksText, int mib, int rounds, int iperfSeconds, string modelsText, int steps, int threadsPerRank, string planesText, string outDir,
                   List<(string Name, string Address)>? namespaces = null, int[]? grpcChunks = null, int repeat = 1)
    {
        if (repeat < 1) throw new ArgumentException($"--repeat must be ≥ 1 (got {repeat})");
        grpcChunks = grpcChunks is { Length: > 0 } ? grpcChunks : [Jetpack.Protocol.Codec.WireLimits.Default.ChunkBytes];
        var transports = planesText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                                   .Select(Plane.Parse)
                                   .Distinct().ToArray();
        if (transports.Length == 0) throw new ArgumentException("--data-plane: name at least one transport (grpc, tcp, grpc+tls, tcp+tls)");
        using var certificates = transports.Any(t => t.Tls) ? new ThrowAwayCertificates() : null;
        var tls = certificates?.Tls;
        var worlds = ranksText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        if (worlds.Any(w => w < 2)) throw new ArgumentException($"--ranks: every count must be ≥ 2 (got {ranksText})");
        if (namespaces is not null && worlds.Any(w => w != 2)) throw new ArgumentException($"--netns measures 2 ranks (one per namespace): pass --ranks 2 (got {ranksText})");
        if (namespaces is not null && modelsText.Length > 0) throw new ArgumentException("--netns measures the all-to-all only: pass --models ''");
        if (mib < 1 || rounds < 1 || steps < 2) throw new ArgumentException("--mib ≥ 1, --rounds ≥ 1, --steps ≥ 2");
        Directory.CreateDirectory(outDir);
        var result = new Dictionary<string, object>();

        if (threadsPerRank < 0) throw new ArgumentException($"--threads-per-rank must be ≥ 0 (got {threadsPerRank})");
        var table = new Table().AddColumns("processes", "transport", "piece", "all-to-all (GB/s, all ranks)", "per rank (GB/s)", "iperf3 1 stream", "iperf3 same flows", "ratio vs same flows");
        var exchangeRows = new List<object>();
        var measured = new List<(int World, string Transport, double Gbps)>();
        var tlsRows = new List<object>();
        var plainOf = new Dictionary<(int, DataPlaneTransport, int?), List<double>>();
        string link = namespaces is null ? "loopback" : $"{namespaces[0].Name} → {namespaces[1].Name} (veth + bridge)";
        double single = worlds.Length == 0 ? double.NaN : Iperf(1, iperfSeconds, namespaces);
        if (worlds.Length > 0) AnsiConsole.MarkupLine($"iperf3 {link}, 1 stream: [bold]{single:F2} GB/s[/]");
        result["link"] = link;
        // the ceiling under gRPC: .NET's HTTP/2 (Kestrel + SocketsHttpHandler) with no gRPC on top, one stream
        double http2 = worlds.Length == 0 ? double.NaN : Http2Bare(256L << 20, download: false);
        double http2Down = worlds.Length == 0 ? double.NaN : Http2Bare(256L << 20, download: true);
        if (worlds.Length > 0)
        {
            AnsiConsole.MarkupLine($"bare HTTP/2 upload (Kestrel + SocketsHttpHandler, no gRPC; grpc's direction), 1 stream: [bold]{http2:F2} GB/s[/] ({100 * http2 / single:F0}% of iperf3's stream)");
            AnsiConsole.MarkupLine($"bare HTTP/2 download (grpc-pull's direction), 1 stream: [bold]{http2Down:F2} GB/s[/] ({100 * http2Down / single:F0}% of iperf3's stream)");
        }
        result["http2_bare_one_stream_gbps"] = http2;
        result["http2_bare_one_stream_download_gbps"] = http2Down;
        foreach (int world in worlds)
        {
            int flows = world * (world - 1);
            double parallel = Iperf(flows, iperfSeconds, namespaces);
            var rows = transports.SelectMany(t => t.Transport.IsGrpc() ? grpcChunks.Select(c => (t, (int?)c)) : [(t, (int?)null)]).ToList();
            // every plane once per pass, the passes one after another: a slow minute of the machine hits every plane alike
            var passes = rows.ToDictionary(x => x, _ => new List<(double Aggregate, double PerRank)>());
            for (int pass = 0; pass < repeat; pass++)
                foreach (var (transport, chunk) in rows)
                    passes[(transport, chunk)].Add(AllToAll(world, (long)mib << 20, rounds, transport.Transport, namespaces, chunk, transport.Tls ? tls : null, transport.SslStreamRecords));
            foreach (var (transport, chunk) in rows)
            {
                var runs = passes[(transport, chunk)];
                double aggregate = BenchCommand.Median(runs.Select(x => x.Aggregate)), perRank = BenchCommand.Median(runs.Select(x => x.PerRank));
                double ratio = aggregate / parallel;
                string name = chunk is { } c ? $"{transport.Name} ({c >> 10} KiB messages)" : transport.Name;
                if (transport.Tls && plainOf.GetValueOrDefault((world, transport.Transport, chunk)) is { } plainRuns)
                {
                    var ratios = runs.Zip(plainRuns, (t, p) => t.Aggregate / p).ToList();
                    double share = BenchCommand.Median(ratios), plain = BenchCommand.Median(plainRuns);
                    string each = repeat > 1 ? $"; per pass {string.Join(", ", ratios.Select(r => $"{100 * r:F0}%"))}" : "";
                    AnsiConsole.MarkupLine($"{world} processes: {Markup.Escape(name)} moves [bold]{100 * share:F0}%[/] of plaintext ({aggregate:F2} vs {plain:F2} GB/s{each})");
                    tlsRows.Add(new { processes = world, transport = transport.Transport.Name(), plane = transport.Name, grpc_message_bytes = chunk, tls_gbps = aggregate, plaintext_gbps = plain, tls_vs_plaintext = share, tls_vs_plaintext_per_pass = ratios });
                }
                else if (!transport.Tls)
                {
                    plainOf[(world, transport.Transport, chunk)] = [.. runs.Select(x => x.Aggregate)];
                    measured.Add((world, transport.Transport.Name(), aggregate));
                }
                table.AddRow(world.ToString(), Markup.Escape(name), $"{mib} MiB", $"{aggregate:F2}", $"{perRank:F2}", $"{single:F2}", $"{parallel:F2} ({flows} streams)", $"{100 * ratio:F0}%");
                exchangeRows.Add(new { processes = world, transport = transport.Name, tls = transport.Tls, grpc_message_bytes = chunk, piece_mib = mib, rounds, passes = repeat, all_to_all_gbps = aggregate, all_to_all_gbps_per_pass = runs.Select(x => x.Aggregate).ToList(), per_rank_gbps = perRank, iperf3_one_stream_gbps = single, iperf3_parallel_gbps = parallel, iperf3_streams = flows, ratio });
            }
        }
        if (worlds.Length > 0) AnsiConsole.Write(table);
        result["exchange"] = exchangeRows;
        // the rule of issue 20: gRPC is the default data plane only at ≥ 80 % of TCP (and ≥ 50 % of iperf3 on loopback)
        foreach (int world in worlds)
        {
            // gRPC at its best message size and direction (grpc, grpc-pull) against TCP
            var at = measured.Where(x => x.World == world).GroupBy(x => x.Transport).ToDictionary(g => g.Key, g => g.Max(x => x.Gbps));
            var grpc = at.Where(kv => DataPlaneTransports.Parse(kv.Key, "--data-plane").IsGrpc()).ToList();
            if (grpc.Count > 0 && at.TryGetValue("tcp", out var t))
            {
                var (name, g) = grpc.MaxBy(kv => kv.Value);
                AnsiConsole.MarkupLine($"{world} processes over {Markup.Escape(link)}: gRPC ({name}) / TCP = [bold]{100 * g / t:F0}%[/]");
                result[$"grpc_over_tcp_{world}"] = g / t;
            }
        }
        result["tls_vs_plaintext"] = tlsRows;

        var stepRows = new List<object>();
        var stepTable = new Table().AddColumns("model", "transport", "batch", "1 rank (s/step)", "2 ranks (s/step)", "speed-up", "exchange share", "all-reduce share");
        foreach (var variant in modelsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int batch = variant == "v_jetmoe_t" ? 8 : 32;
            var one = StepTimes(variant, 1, batch, steps, threadsPerRank, transports[0].Transport, null);
            foreach (var transport in transports)
            {
                var two = StepTimes(variant, 2, batch, steps, threadsPerRank, transport.Transport, transport.Tls ? tls : null);
                string name = transport.Name;
                stepTable.AddRow(variant, name, batch.ToString(), $"{one.Median:F3}", $"{two.Median:F3}", $"{one.Median / two.Median:F2}×", $"{100 * two.ExchangeShare:F0}%", $"{100 * two.ReduceShare:F0}%");
                stepRows.Add(new { model = variant, transport = name, batch, threads_per_rank = threadsPerRank, one_rank_s = one.Median, two_ranks_s = two.Median, speedup = one.Median / two.Median, exchange_share = two.ExchangeShare, all_reduce_share = two.ReduceShare });
            }
        }
        if (stepRows.Count > 0) AnsiConsole.Write(stepTable);
        result["steps"] = stepRows;
        // other processes on the machine share its cores: the load says how much the figures are diluted
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        AnsiConsole.MarkupLine($"{Environment.ProcessorCount} cores; load average at the end: {load}");
        result["machine"] = new { cores = Environment.ProcessorCount, loadavg_at_end = load };
        var path = Path.Combine(outDir, "bench-exchange.json");
        File.WriteAllText(path, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        AnsiConsole.MarkupLine($"written: {Markup.Escape(path)}");
        return 0;
    }

    /// <summary>Aggregate and mean per-rank all-to-all throughput (bytes sent to other ranks / time), GB/s.</summary>
    static (double Aggregate, double PerRank) AllToAll(int world, long bytesPerPeer, int rounds, DataPlaneTransport transport, List<(string Name, string Address)>? namespaces, int? chunkBytes,
                                                      ClusterTls? tls, bool sslStreamRecords = false)
    {
        var options = new LaunchOptions
        {
            WorldSize = world, JobId = $"bench-{world}", ThreadsPerWorker = 1, DataPlane = transport, Namespaces = namespaces, ChunkBytes = chunkBytes, Tls = tls,
            Environment = sslStreamRecords ? new Dictionary<string, string> { [ClusterTls.TcpRecordsEnv] = "sslstream" } : null,
        };
        var launcher = WorkerLauncher.StartAsync(options).GetAwaiter().GetResult();
        try
        {
            var replies = Task.WhenAll(Enumerable.Range(0, world).Select(r => launcher.Control(r).BenchExchangeAsync(
                new BenchExchangeRequest { BytesPerPeer = bytesPerPeer, Rounds = rounds, Warmup = 2 }, deadline: DateTime.UtcNow.AddMinutes(10)).ResponseAsync))
                .GetAwaiter().GetResult();
            if (replies.FirstOrDefault(x => !x.Verified) is { } bad) throw new InvalidOperationException($"rank {bad.Rank}: received pieces did not hold their sources' values");
            double aggregate = replies.Sum(x => x.BytesSent) / replies.Max(x => x.Seconds) / 1e9;
            double perRank = replies.Average(x => x.BytesSent / x.Seconds) / 1e9;
            AnsiConsole.MarkupLine($"{world} processes, {transport.Name()}{(tls is null ? "" : sslStreamRecords ? "+tls-sslstream" : "+tls")}{(chunkBytes is { } c ? $" ({c >> 10} KiB messages)" : "")}: {string.Join(", ", replies.Select(x => $"rank {x.Rank} {x.BytesSent / x.Seconds / 1e9:F2} GB/s"))}");
            return (aggregate, perRank);
        }
        finally { launcher.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    sealed record StepTiming(double Median, double ExchangeShare, double ReduceShare);

    /// <summary>A transport as measured: plain, or under mutual TLS (the TCP plane in sealed records, or in SslStream's own).</summary>
    sealed record Plane(DataPlaneTransport Transport, bool Tls, bool SslStreamRecords = false)
    {
        public string Name => Transport.Name() + (SslStreamRecords ? "+tls-sslstream" : Tls ? "+tls" : "");

        /// <summary>"tcp", "tcp+tls", "tcp+tls-sslstream", "grpc+tls", …</summary>
        public static Plane Parse(string text)
        {
            if (text.EndsWith("+tls-sslstream", StringComparison.Ordinal))
            {
                var t = DataPlaneTransports.Parse(text[..^"+tls-sslstream".Length], "--data-plane");
                if (t != DataPlaneTransport.Tcp) throw new ArgumentException($"--data-plane: '{text}': the sslstream record layer is the TCP plane's only (tcp+tls-sslstream)");
                return new Plane(t, true, true);
            }
            return text.EndsWith("+tls", StringComparison.Ordinal) ? new Plane(DataPlaneTransports.Parse(text[..^4], "--data-plane"), true)
                                                                   : new Plane(DataPlaneTransports.Parse(text, "--data-plane"), false);
        }
    }

    /// <summary>A CA and one loopback node certificate in a temporary directory, deleted on dispose (the workers read the files at start).</summary>
    sealed class ThrowAwayCertificates : IDisposable
    {
        private readonly string dir = Directory.CreateTempSubdirectory("jetpack-bench-tls-").FullName;

        public ThrowAwayCertificates()
        {
            string ca = Path.Combine(dir, "ca"), node = Path.Combine(dir, "node");
            CertificateAuthority.Init(ca).Dispose();
            CertificateAuthority.Issue(ca, "bench", [IPAddress.Loopback], [], node).Dispose();
            Tls = ClusterTls.Load(Path.Combine(node, CertificateAuthority.NodeCert), Path.Combine(node, CertificateAuthority.NodeKey), Path.Combine(node, CertificateAuthority.CaCert));
        }

        public ClusterTls Tls { get; }

        public void Dispose()
        {
            Tls.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Trains <paramref name="steps"/> steps on synthetic data with <paramref name="world"/> ranks (the cores split among them).</summary>
    static StepTiming StepTimes(string variant, int world, int batch, int steps, int threadsPerRank, DataPlaneTransport transport, ClusterTls? tls)
    {
        var spec = new WorkerJobSpec
        {
            Model = variant,
            Data = new RunData { Dataset = "synthetic", SyntheticCount = batch * steps, Augment = false },
            Recipe = new TrainerOptions { Steps = steps, GlobalBatch = batch, WarmupSteps = 1 },
        };
        var launcher = WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = world, JobId = $"bench-step-{world}", StepDeadline = TimeSpan.FromMinutes(5), ThreadsPerWorker = threadsPerRank, DataPlane = transport, Tls = tls })
                                     .GetAwaiter().GetResult();
        try
        {
            var outcome = launcher.RunJobAsync(spec).GetAwaiter().GetResult();
            if (outcome.Failure is { } f) throw new InvalidOperationException($"{variant} on {world} ranks: {f}\n{launcher.Report()}");
            var timed = outcome.Rank0.Skip(1).ToList();                          // the first step pays for allocation and connection set-up
            var sorted = timed.Select(p => p.StepSeconds).Order().ToList();
            double total = timed.Sum(p => p.StepSeconds);
            var t = new StepTiming(sorted[sorted.Count / 2], timed.Sum(p => p.ExchangeSeconds) / total, timed.Sum(p => p.AllReduceSeconds) / total);
            AnsiConsole.MarkupLine($"{variant}, {world} rank(s), {transport}, batch {batch}: median {t.Median:F3} s/step, exchange {100 * t.ExchangeShare:F0}%, all-reduce {100 * t.ReduceShare:F0}%");
            return t;
        }
        finally { launcher.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    /// <summary>
    /// One HTTP/2 stream on loopback, no gRPC: a Kestrel h2c server in this process reads a POST body
    /// that an HttpClient writes in 1 MiB pieces, with the data plane's window sizes. Best of 3
    /// uploads of <paramref name="bytes"/> after a warm-up, GB/s.
    /// </summary>
    /// <summary>
    /// .NET's HTTP/2 alone (Kestrel + SocketsHttpHandler with the data plane's window settings, no gRPC), one stream on
    /// loopback in this process, best of 3 after a warm-up, GB/s: an upload (the grpc push plane's direction: a request body)
    /// or a download (grpc-pull's: a response body). The ceiling under the gRPC planes.
    /// </summary>
    static double Http2Bare(long bytes, bool download)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2);
            WireChannels.ConfigureServer(k.Limits);
        });
        var app = builder.Build();
        app.MapGet("/source/{size:long}", async (HttpContext ctx, long size) =>
        {
            var piece = new byte[1 << 20];
            for (long left = size; left > 0; left -= piece.Length)
                await ctx.Response.Body.WriteAsync(piece.AsMemory(0, (int)Math.Min(piece.Length, left)));
        });
        app.MapPost("/sink", async (HttpContext ctx) =>
        {
            long n = 0;
            while (true)
            {
                var read = await ctx.Request.BodyReader.ReadAsync();
                n += read.Buffer.Length;
                ctx.Request.BodyReader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) return n;
            }
        });
        app.StartAsync().GetAwaiter().GetResult();
        try
        {
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                              .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
            using var client = new HttpClient(new SocketsHttpHandler { InitialHttp2StreamWindowSize = WireChannels.StreamWindowBytes })
            {
                DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            double best = 0;
            for (int i = 0; i < 4; i++)
            {
                long size = i == 0 ? 64L << 20 : bytes;                       // the first upload warms up (JIT, connection)
                var clock = Stopwatch.StartNew();
                string got;
                if (download)
                {
                    using var response = client.GetAsync($"{address}/source/{size}", HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult();
                    using var body = response.EnsureSuccessStatusCode().Content.ReadAsStream();
                    var into = new byte[1 << 20];
                    long n = 0;
                    for (int k; (k = body.Read(into)) > 0;) n += k;
                    got = n.ToString();
                }
                else
                {
                    using var response = client.PostAsync($"{address}/sink", new Upload(size)).GetAwaiter().GetResult();
                    got = response.EnsureSuccessStatusCode().Content.ReadAsStringAsync().GetAwaiter().GetResult();
                }
                if (got != size.ToString()) throw new InvalidOperationException($"bare HTTP/2 {(download ? "download" : "upload")}: {got} of {size} bytes arrived");
                if (i > 0) best = Math.Max(best, size / clock.Elapsed.TotalSeconds / 1e9);
            }
            return best;
        }
        finally { app.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    /// <summary>A request body of <paramref name="bytes"/> zero bytes, written in 1 MiB pieces.</summary>
    sealed class Upload(long bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var piece = new byte[1 << 20];
            for (long left = bytes; left > 0; left -= piece.Length)
                await stream.WriteAsync(piece.AsMemory(0, (int)Math.Min(piece.Length, left)));
        }

        protected override bool TryComputeLength(out long length) { length = bytes; return true; }
    }

    /// <summary>
    /// Raw TCP throughput with iperf3 (one-off server on a free port), GB/s: on loopback, or from the
    /// first namespace to the second (server in the second, as rank 1, client in the first).
    /// </summary>
    static double Iperf(int streams, int seconds, List<(string Name, string Address)>? namespaces = null)
    {
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0)) { l.Start(); port = ((IPEndPoint)l.LocalEndpoint).Port; }
        string host = namespaces?[1].Address ?? "127.0.0.1";
        string[] In(int i, params string[] args) => namespaces is null ? args : ["netns", "exec", namespaces[i].Name, "iperf3", .. args];
        string exe = namespaces is null ? "iperf3" : "ip";
        using var server = Start(exe, In(1, "-s", "-1", "--forceflush", "-B", host, "-p", port.ToString()));
        // the server says when it listens (a line after a rule of dashes); only then may the client connect
        var listening = Task.Run(() =>
        {
            for (string? line; (line = server.StandardOutput.ReadLine()) is not null;)
                if (line.Contains("listening", StringComparison.OrdinalIgnoreCase)) return true;
            return false;
        });
        if (!listening.Wait(TimeSpan.FromSeconds(10)) || !listening.Result)
            throw new InvalidOperationException($"iperf3 server did not report listening on {host}:{port} within 10 s: {server.StandardError.ReadToEnd()}");
        using var client = Start(exe, In(0, "-c", host, "-p", port.ToString(), "-t", seconds.ToString(), "-P", streams.ToString(), "-J"));
        string json = client.StandardOutput.ReadToEnd();
        if (!client.WaitForExit(TimeSpan.FromSeconds(seconds + 30)) || client.ExitCode != 0)
            throw new InvalidOperationException($"iperf3 client failed (exit {(client.HasExited ? client.ExitCode : -1)}): {client.StandardError.ReadToEnd()} {json}");
        if (!server.WaitForExit(TimeSpan.FromSeconds(10))) server.Kill();
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("end", out var end) || !end.TryGetProperty("sum_received", out var sum))
            throw new InvalidOperationException($"iperf3 -P {streams}: no end.sum_received in its report: {json[..Math.Min(json.Length, 2000)]}");
        return sum.GetProperty("bits_per_second").GetDouble() / 8 / 1e9;
    }

    static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try { return Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file} not found ({e.Message}): install Debian's iperf3 (scripts/setup.sh --bench)", e);
        }
    }
}
