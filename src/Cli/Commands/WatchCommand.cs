using System.CommandLine;
using Grpc.Core;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack watch JOB</c>: one line per change (phase, step, loss, images/s) until the job ends.</summary>
public static class WatchCommand
{
    static readonly Argument<string> Job = new("job") { Description = "job id" };

    public static Command Create()
    {
        var cmd = new Command("watch", "Follow a job live: a line per change (phase, step, loss, images/s, last evaluation; the final model at the end) until it ends. Exit code: 0 completed, 10 failed, 11 cancelled.") { Job };
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        using var c = JobClient.Connect(r);
        var last = await JobClient.Invoke(c, async x =>
        {
            using var call = x.Client.Watch(new JobRequest { JobId = r.GetValue(Job) }, x.Call(cancel, stream: true));
            JobStatus? latest = null;
            await foreach (var status in call.ResponseStream.ReadAllAsync(cancel))
            {
                latest = status;
                Console.WriteLine($"{DateTime.Now:HH:mm:ss}  {JobClient.Describe(status)}"); // one unwrapped line per change (logs, pipes)
            }
            return latest;
        });
        return last?.Phase switch
        {
            JobPhase.Completed => ExitCodes.Ok,
            JobPhase.Failed => ExitCodes.JobFailed,
            JobPhase.Cancelled => ExitCodes.JobCancelled,
            _ => throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, $"the coordinator ended the watch of '{r.GetValue(Job)}' before the job ended")),
        };
    }
}
