using Jetpack.Application.Runs;
using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using TorchSharp;
using Jetpack.Cli.Study;
using Jetpack.Coordinator.Jobs;
using Jetpack.WorkerCluster;
using JobPhase = Jetpack.Protocol.Jobs.JobPhase;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Demo;

/// <summary>
/// <c>jetpack demo</c>, the README's main job (issue 6): on one machine, (1) the dense Fashion-MNIST
/// predecessor and target, trained briefly on classes 0–4 by the study's upstream stage (kept on disk);
/// (2) the coordinator in this process, and a Jetpack job submitted to it over gRPC — the coordinator
/// recycles importance-L2 experts from the predecessor into the target (a child `jetpack recycle`,
/// once per content key), scatters them to 2 registered jetpack-worker processes and (3) trains the
/// recycled V-JetMoE with expert parallelism on classes 5–9 (500 images per class); (4) baselines from scratch for the same
/// steps in this process; (5) the result table and a convergence plot.
/// The workers are jetpack-worker processes that register with the coordinator; the coordinator's
/// GrpcTrainingDriver scatters the recycled checkpoint to them and drives the training.
/// </summary>
public static class DemoCommand
{
    static readonly Option<bool> Smoke = new("--smoke") { Description = "every stage on tiny sizes (about a minute plus start-ups): checks an installation; the numbers mean nothing" };
    static readonly Option<string> Out = new("--out") { Description = "results folder, also the coordinator's data dir (upstream/, grains/, recycled/, runs/, results.md, results.json, convergence.png)", DefaultValueFactory = _ => "results/demo" };
    static readonly Option<bool> Fresh = new("--fresh") { Description = "retrain the upstream models even if finished ones with the same config are on disk" };
    static readonly Option<int> Workers = new("--workers") { Description = "worker processes of the expert-parallel job", DefaultValueFactory = _ => 2 };

    public static Command Create()
    {
        var cmd = new Command("demo", "The main job on one machine: upstream dense models, the coordinator recycles a Jetpack MoE, 2 worker processes train it with expert parallelism, baselines for equal steps, a result table and a convergence plot.")
        {
            Smoke, Out, Fresh, Workers, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r.GetValue(Smoke) ? DemoPlan.Smoke : DemoPlan.Full, r.GetValue(Out)!, r.GetValue(Fresh), r.GetValue(Workers),
                               r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads)));
        return cmd;
    }

    public static int Run(StudyPlan plan, string outDir, bool fresh, int workers, string deviceName, int threads)
    {
        if (workers < 1) throw new ArgumentException($"--workers must be ≥ 1, got {workers}");
        var device = Devices.Parse(deviceName);
        CommonOptions.ApplyThreads(threads);
        outDir = Path.GetFullPath(outDir);
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        var seconds = new Dictionary<string, double?>();                 // null: done earlier and reused
        AnsiConsole.Write(new Rule($"[bold]jetpack demo[/] ({plan.Name}): MoE Jetpack on Fashion-MNIST with {workers} workers"));

        // 1. Upstream: dense predecessor and target on classes 0–4 (the study's stage; cached in upstream/).
        string pred = StudyCommand.Upstream(plan, "vit_fmnist_pred", plan.PredecessorSteps, outDir, fresh, device, threads, seconds);
        string target = StudyCommand.Upstream(plan, "vit_fmnist_t", plan.TargetSteps, outDir, fresh, device, threads, seconds);

        // 2. The coordinator recycles the Jetpack MoE for a submitted job.
        var jetpack = DemoPlan.Jetpack;
        var config = JetpackConfig(plan, outDir, init: null);
        var spec = new JobSpec(config)
        {
            Name = "fmnist-demo", Model = jetpack.Model, Workers = workers,
            Recycle = new RecycleSpec
            {
                From = pred, Target = target, Method = "importance-l2", Seed = (long)plan.Seed,
                ProfileFashionMnist = true, ProfileClasses = StudyPlan.UpstreamClasses, ProfileCount = plan.ProfileImages,
            },
        };
        string jobId = $"fmnist-demo-{DateTime.UtcNow:yyyyMMdd-HHmmss}";
        AnsiConsole.Write(new Rule($"coordinator: job {jobId} (recycle importance-L2 → {Markup.Escape(jetpack.Model)})").LeftJustified());
        var lap = Stopwatch.StartNew();
        Dictionary<string, double> runSeconds = [];
        using (var coordinator = new CoordinatorScope(outDir)) // its data dir: a job writes only inside it (runs/ here)
        {
            var c = coordinator.Coordinator;
            AnsiConsole.MarkupLine($"coordinator: jobs {c.Grpc}, metrics {c.Metrics}");
            // 2. Workers join the coordinator; 3. it recycles, scatters and trains (DESIGN.md, "Processes and projects").
            var launcher = WorkerLauncher.StartAsync(new LaunchOptions
            {
                WorldSize = workers, Coordinator = c.Grpc, Token = c.Token, WorkerIdPrefix = "demo-worker-", ThreadsPerWorker = threads,
                StepDeadline = TimeSpan.FromMinutes(3),                       // a loaded machine stalls; a lost worker is still found by its heartbeats
            }).GetAwaiter().GetResult();
            try
            {
                AnsiConsole.MarkupLine($"workers joined: {string.Join(", ", launcher.Workers.Select(w => $"pid {w.Pid} {w.Address} (metrics {w.MetricsAddress})"))}");
                var status = c.SubmitAndWait(spec, jobId, s => s.Phase is JobPhase.Training, TimeSpan.FromMinutes(15)).GetAwaiter().GetResult();
                AnsiConsole.MarkupLine($"recycled checkpoint{(status.CheckpointReused ? " (reused: same sources, recipe and seed as an earlier job)" : "")}: {Markup.Escape(status.CheckpointPath)}");
                seconds["recycle + scatter (coordinator)"] = lap.Elapsed.TotalSeconds;
                AnsiConsole.Write(new Rule($"jetpack: {Markup.Escape(jetpack.Label)}, expert-parallel on {workers} workers").LeftJustified());
                lap.Restart();
                status = c.FollowTraining(jobId, config.Recipe.Steps).GetAwaiter().GetResult();
                if (status.Phase != JobPhase.Completed)
                {
                    AnsiConsole.MarkupLine($"[red]job {jobId} {status.Phase.ToString().ToLowerInvariant()}[/]: {Markup.Escape(status.Message)}");
                    Console.Error.WriteLine(launcher.Report());
                    return 1;
                }
                AnsiConsole.MarkupLine($"job {Markup.Escape(JobClient.Describe(status))}");
            }
            finally { launcher.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            runSeconds[jetpack.Id] = lap.Elapsed.TotalSeconds;
        }

        // 4. Baselines for the same steps, in this process.
        foreach (var run in DemoPlan.Baselines)
        {
            AnsiConsole.Write(new Rule($"baseline: {Markup.Escape(run.Label)}").LeftJustified());
            lap.Restart();
            torch.manual_seed((long)plan.Seed);
            LocalTraining.Run(StudyCommand.DownstreamConfig(plan, run, init: null, outDir), resume: false, until: null, device, threads);
            runSeconds[run.Id] = lap.Elapsed.TotalSeconds;
        }

        // 5. The table and the plot.
        var results = new[] { jetpack }.Concat(DemoPlan.Baselines)
            .Select(r => RunResult.Read(r, Path.Combine(outDir, "runs", r.Id, "metrics.jsonl"))).ToList();   // the job's: the workers' evaluations
        var report = new DemoReport(plan, workers, results, runSeconds, seconds, clock.Elapsed.TotalSeconds);
        report.Write(outDir);
        AnsiConsole.Write(new Rule("[bold]result[/]"));
        AnsiConsole.Write(report.Table());
        AnsiConsole.MarkupLine($"written: {Markup.Escape(outDir)}/results.md, results.json, convergence.png ({clock.Elapsed.TotalMinutes:F1} min)");
        return 0;
    }

    /// <summary>The Jetpack run's training config (the study's downstream config of the run).</summary>
    static RunSpec JetpackConfig(StudyPlan plan, string outDir, string? init) => StudyCommand.DownstreamConfig(plan, DemoPlan.Jetpack, init, outDir);

    /// <summary>Starts the in-process coordinator and stops it at the end of the scope.</summary>
    sealed class CoordinatorScope(string dataDirectory) : IDisposable
    {
        public DemoCoordinator Coordinator { get; } = DemoCoordinator.StartAsync(dataDirectory).GetAwaiter().GetResult();
        public void Dispose() => Coordinator.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
