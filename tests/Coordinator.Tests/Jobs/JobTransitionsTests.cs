using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Tests.Jobs;

public class JobTransitionsTests
{
    [Fact]
    public void TheHappyPathRecoveryAndGrowthAreLegal()
    {
        // … Training → Scattering: an elastic job grows at a checkpoint boundary (issue 20 fault 7)
        JobPhase[] path = [JobPhase.Pending, JobPhase.Recycling, JobPhase.Scattering, JobPhase.Training, JobPhase.Recovering, JobPhase.Scattering, JobPhase.Training,
                           JobPhase.Scattering, JobPhase.Training, JobPhase.Completed];
        for (int i = 1; i < path.Length; i++) Assert.True(JobTransitions.IsAllowed(path[i - 1], path[i]), $"{path[i - 1]} → {path[i]}");
    }

    [Theory]
    [InlineData(JobPhase.Pending, JobPhase.Training)]      // no skipping recycling and scatter
    [InlineData(JobPhase.Recycling, JobPhase.Training)]
    [InlineData(JobPhase.Recycling, JobPhase.Recovering)]  // no workers to lose yet
    [InlineData(JobPhase.Training, JobPhase.Recycling)]
    [InlineData(JobPhase.Recovering, JobPhase.Training)]   // must re-scatter first
    [InlineData(JobPhase.Completed, JobPhase.Training)]
    [InlineData(JobPhase.Failed, JobPhase.Recycling)]
    [InlineData(JobPhase.Cancelled, JobPhase.Pending)]
    public void IllegalTransitionsAreRefusedWithTheJobAndBothPhasesNamed(JobPhase from, JobPhase to)
    {
        Assert.False(JobTransitions.IsAllowed(from, to));
        var e = Assert.Throws<IllegalTransitionException>(() => JobTransitions.Check("job-7", from, to));
        Assert.Contains("job-7", e.Message);
        Assert.Contains($"{from} → {to}", e.Message);
    }

    [Fact]
    public void EndedPhasesAreTerminalAndEveryLivePhaseCanFailOrBeCancelled()
    {
        foreach (var phase in Enum.GetValues<JobPhase>())
        {
            bool ended = phase is JobPhase.Completed or JobPhase.Failed or JobPhase.Cancelled;
            Assert.Equal(ended, JobTransitions.IsTerminal(phase));
            if (!ended)
            {
                Assert.True(JobTransitions.IsAllowed(phase, JobPhase.Failed), $"{phase} → Failed");
                Assert.True(JobTransitions.IsAllowed(phase, JobPhase.Cancelled), $"{phase} → Cancelled");
            }
        }
    }

    [Fact]
    public void PhaseNumbersEqualTheWireEnum()
    {
        foreach (var phase in Enum.GetValues<JobPhase>())
            Assert.Equal(phase.ToString(), ((Protocol.Jobs.JobPhase)(int)phase).ToString());
    }
}
