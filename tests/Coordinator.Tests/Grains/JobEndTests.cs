using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.Protocol.Jobs;
using Jetpack.WorkerCluster;

namespace Jetpack.Coordinator.Tests.Grains;

/// <summary>
/// How a job ends and what status keeps (issue 13): the last evaluation and the final model in
/// status; a failed final-model write fails the job; message, progress and evaluation survive a
/// coordinator restart (file storage).
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class JobEndTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task StatusShowsTheLastEvaluationAndTheFinalModelTheDriverWrote()
    {
        var driver = new FakeTrainingDriver { Steps = 5, EvalEvery = 2 };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("evals", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        var done = await c.WaitForPhase("evals", JobPhase.Completed);

        Assert.NotNull(done.LastEval);
        Assert.Equal((4L, 0.4, 0.25, 50), (done.LastEval.Step, done.LastEval.Top1, done.LastEval.Loss, done.LastEval.Images));   // step 5 had none
        Assert.Equal(Path.Combine(c.Options.JobsDirectory, "evals"), done.OutDirectory);
        Assert.Equal(Path.Combine(done.OutDirectory, FinalModel.FileName), done.FinalModel);
        var finished = Assert.Single(driver.Finished);
        Assert.Equal(4L, finished!.Step);                                               // the driver got the last evaluation for the metadata
        Assert.Contains("top-1 40.00%", Jetpack.Cli.CommandLine.JobClient.Describe(done));
    }

    [Fact]
    public async Task AFinalModelThatCannotBeWrittenFailsTheJobWithTheDriversMessage()
    {
        var driver = new FakeTrainingDriver { FinishError = "final model /x/final.safetensors: checkpoint at step 3, the job ended at step 5" };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("no-model", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        var failed = await c.WaitForPhase("no-model", JobPhase.Failed);
        Assert.Equal(driver.FinishError, failed.Message);
        Assert.Equal("", failed.FinalModel);
    }

    [Fact]
    public async Task MessageProgressAndEvaluationSurviveACoordinatorRestart()
    {
        string data = dir.File("data"), pred = JobSpecs.Checkpoint(dir, "p.safetensors", "p");
        string clusterId = "end-" + Guid.NewGuid().ToString("N")[..8];
        var driver = new FakeTrainingDriver { Steps = 4, EvalEvery = 2 };
        driver.HoldJobs.Add("running");                                                 // still training at the restart
        JobStatus before, failedBefore;
        // The registered workers never heartbeat: a long timeout keeps them alive however slowly a loaded machine runs.
        await using (var c = await TestCoordinator.StartAsync(data, new FakeRecycler(dir.Path), driver, configure: o => o.ClusterId = clusterId,
                                                              heartbeatTimeout: TimeSpan.FromMinutes(10)))
        {
            await c.RegisterWorker("w0");
            await c.RegisterWorker("w1");
            await c.Submit(JobSpecs.Yaml("running", pred));
            before = await Await.Until(() => c.Status("running"), s => s.Phase == JobPhase.Training && s.LastEval?.Step == 4, "job running to report its evaluation of step 4");
            driver.FinishError = "final model: disk full";
            await c.Submit(JobSpecs.Yaml("failing", pred, seed: 7));
            failedBefore = await c.WaitForPhase("failing", JobPhase.Failed);
        }

        // The restarted coordinator recovers the job (on the persisted workers, or waiting for them); its
        // driver reports no step and holds, so what status shows can only come from the persisted state.
        var quiet = new FakeTrainingDriver { Steps = 0 };
        quiet.HoldJobs.Add("running");
        await using (var c = await TestCoordinator.StartAsync(data, new FakeRecycler(dir.Path), quiet, configure: o => o.ClusterId = clusterId,
                                                              heartbeatTimeout: TimeSpan.FromMinutes(10), acquireTimeout: TimeSpan.FromMinutes(1)))
        {
            var after = await Await.Until(() => c.Status("running"), s => s.Recoveries >= 1, "job running to recover after the restart");
            Assert.True(after.Phase is JobPhase.Recovering or JobPhase.Scattering or JobPhase.Training, $"{after.Phase}: {after.Message}");
            Assert.Equal((4L, 4L), (after.Step, after.TotalSteps));
            Assert.Equal(before.LastEval, after.LastEval);
            Assert.Equal(before.Loss, after.Loss);
            Assert.True(after.Message.Length > 0, "the recovery's reason");
            var failed = await c.Status("failing");
            Assert.Equal((JobPhase.Failed, "final model: disk full"), (failed.Phase, failed.Message));
            Assert.Equal(failedBefore.LastEval, failed.LastEval);
        }
    }
}
