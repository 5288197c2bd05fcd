using System.Diagnostics;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Cli;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Security;

/// <summary>
/// Issue 12 end to end: a real `jetpack coordinator` process is sent every hostile input found by the
/// new user over raw gRPC; each is refused with InvalidArgument (or NotFound) quickly, never Unknown,
/// and the coordinator still answers List and /healthz afterwards (before the fix, the first one killed it).
/// </summary>
public sealed class HostileInputProcessTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    static string Bomb()
    {
        var s = new StringBuilder("name: bomb\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (char c = 'b'; c <= 'i'; c++) s.Append($"{c}: &{c} [{string.Join(",", Enumerable.Repeat($"*{(char)(c - 1)}", 9))}]\n");
        return s.ToString();
    }

    [Fact]
    public async Task EveryHostileInputIsRefusedAndTheCoordinatorStaysUp()
    {
        string pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "pred");
        using var coordinator = new CoordinatorProcess(dir.File("data"));
        using var channel = GrpcChannel.ForAddress(coordinator.Jobs, new GrpcChannelOptions { MaxSendMessageSize = 16 << 20 });
        var jobs = new JobService.JobServiceClient(channel);
        CallOptions Call() => new(deadline: DateTime.UtcNow.AddSeconds(20));

        string valid = JobSpecs.Yaml("hostile-ok", pred);
        var submissions = new (string What, string Spec, string Format, string JobId, string Expect)[]
        {
            ("cyclic alias", "name: cyc\nx: &a [*a]\n", "yaml", "", "anchors"),
            ("deep YAML", "name: deep\nx: " + new string('[', 100_000) + "\n", "yaml", "", "nested deeper than 64"),
            ("deep JSON", "{\"name\": " + new string('[', 100_000), "json", "", "nested deeper than 64"),
            ("alias bomb", Bomb(), "yaml", "", "anchors"),
            ("oversize spec", "name: big\n#" + new string('x', JobSpecReader.MaxBytes) + "\n", "yaml", "", "larger than the limit"),
            ("id ../../x", valid, "yaml", "../../x", "job_id"),
            ("id a/b", valid, "yaml", "a/b", "job_id"),
            ("id of 5000 characters", valid, "yaml", new string('a', 5000), "5,000 characters"),
            ("out escaping the data dir", valid + "\nout: ../../escaped\n", "yaml", "", "outside the coordinator's data directory"),
            ("absolute out elsewhere", valid + $"\nout: {dir.File("elsewhere")}\n", "yaml", "", "outside the coordinator's data directory"),
            ("huge classes range", valid + "\ndata:\n  classes: \"0-2147483647\"\n", "yaml", "", "data.classes"),
            ("classes banana", valid + "\ndata:\n  classes: banana\n", "yaml", "", "data.classes"),
        };
        foreach (var (what, spec, format, jobId, expect) in submissions)
        {
            var clock = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<RpcException>(() =>
                jobs.SubmitAsync(new SubmitJobRequest { SpecText = spec, Format = format, Source = "hostile.yaml", JobId = jobId }, Call()).ResponseAsync);
            Assert.True(e.StatusCode == StatusCode.InvalidArgument, $"{what}: {e.StatusCode} {e.Status.Detail}\n{coordinator.Output}");
            Assert.Contains(expect, e.Status.Detail);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{what}: refused after {clock.Elapsed.TotalSeconds:F1} s");
        }

        // Far over the spec limit: gRPC refuses the message before buffering it (its limit follows MaxBytes).
        var huge = await Assert.ThrowsAsync<RpcException>(() => jobs.SubmitAsync(
            new SubmitJobRequest { SpecText = new string('#', 4 * JobSpecReader.MaxBytes), Format = "yaml", Source = "huge.yaml" }, Call()).ResponseAsync);
        Assert.True(huge.StatusCode == StatusCode.ResourceExhausted, $"{huge.StatusCode} {huge.Status.Detail}");

        foreach (string id in new[] { "../../x", "a/b", new string('a', 5000) })
        {
            var request = new JobRequest { JobId = id };
            var calls = new (string Rpc, Func<Task> Call)[]
            {
                ("GetStatus", () => jobs.GetStatusAsync(request, Call()).ResponseAsync),
                ("Cancel", () => jobs.CancelAsync(request, Call()).ResponseAsync),
                ("Watch", async () => { using var w = jobs.Watch(request, Call()); await w.ResponseStream.MoveNext(); }),
            };
            foreach (var (rpc, call) in calls)
            {
                var e = await Assert.ThrowsAsync<RpcException>(call);
                Assert.True(e.StatusCode == StatusCode.InvalidArgument, $"{rpc} '{id[..Math.Min(id.Length, 20)]}': {e.StatusCode} {e.Status.Detail}");
            }
        }
        var missing = await Assert.ThrowsAsync<RpcException>(() => jobs.GetStatusAsync(new JobRequest { JobId = "no-such-job" }, Call()).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        // Still up: List answers (no job was created by any of the above), so does /healthz.
        Assert.Empty((await jobs.ListAsync(new ListJobsRequest(), Call())).Jobs);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal("ok", await http.GetStringAsync(new Uri(new Uri(coordinator.Metrics), "/healthz")));
        Assert.False(Directory.Exists(dir.File("escaped")), "a refused job wrote outside the data directory");

        // A client command pointed at the HTTP/1.1 metrics port: "not a jetpack coordinator", exit 3 (it was 1).
        var (code, output) = CliProcess.Jetpack("list", "--coordinator", new Uri(coordinator.Metrics).GetLeftPart(UriPartial.Authority), "--timeout", "10");
        Assert.True(code == 3, $"exit {code}: {output}");
        Assert.Contains("not a jetpack coordinator", output);
    }
}
