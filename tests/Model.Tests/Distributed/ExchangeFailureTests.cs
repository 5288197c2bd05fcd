using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>
/// Failures of the distributed machinery surface as <see cref="ExchangeFailedException"/> from the
/// trainer, including failures inside a backward pass (where an escaping exception would abort the
/// process), and never hang.
/// </summary>
public class ExchangeFailureTests
{
    static readonly TrainerOptions Recipe = new() { Steps = 3, GlobalBatch = 8, Accumulation = 1, WarmupSteps = 1, Mixup = null, Seed = 3 };

    /// <summary>An exchange that fails (and aborts the hub, like a peer that is gone) in one phase of one rank.</summary>
    sealed class FailingExchange(InProcessHub hub, int rank, ExchangePhase failIn) : IExpertExchange
    {
        public int Rank => rank;
        public int WorldSize => hub.WorldSize;
        public int Calls;

        public Tensor[] AllToAll(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected)
        {
            Calls++;
            if (tag.Phase == failIn)
            {
                hub.Abort($"rank {rank} injected a failure in {tag}");
                throw new ExchangeFailedException($"rank {rank}: injected failure in {tag}");
            }
            return hub[rank].AllToAll(tag, send, expected);
        }
    }

    [Theory]
    [InlineData(ExchangePhase.GradDispatch)]
    [InlineData(ExchangePhase.GradReturn)]
    [InlineData(ExchangePhase.Dispatch)]
    public void AFailingExchangeGivesACleanExceptionOnEveryRank(ExchangePhase phase)
    {
        using var data = Ranks.Data(16, 7);
        var hub = new InProcessHub(2, TimeSpan.FromSeconds(20));
        var outcomes = Ranks.Run(2, rank =>
        {
            IExpertExchange exchange = rank == 1 ? new FailingExchange(hub, 1, phase) : hub[0];
            var context = new DistributedContext(rank, 2, exchange, hub[rank]);
            using var model = ModelRegistry.Create(Ranks.Tiny, CPU, context.Shard);
            using var trainer = new Trainer(Ranks.Tiny, model, data, Recipe, CPU, context);
            var e = Record.Exception(() => trainer.TrainStep());
            return (e, trainer.Step);
        });
        foreach (var (e, step) in outcomes)
        {
            Assert.IsType<ExchangeFailedException>(e);
            Assert.Equal(0, step);                                               // the failed step did not count
        }
        Assert.Contains("injected failure", outcomes[1].e!.ToString());
        Assert.Contains("rank 1 injected", outcomes[0].e!.ToString());           // the other rank learns why
    }

    [Fact]
    public void AFailureInBackwardOfASingleRankIsCleanAndTheProcessGoesOn()
    {
        using var data = Ranks.Data(16, 8);
        var hub = new InProcessHub(1, TimeSpan.FromSeconds(5));
        var failing = new FailingExchange(hub, 0, ExchangePhase.GradReturn);
        var context = new DistributedContext(0, 1, failing, new LocalExchange());
        using var model = ModelRegistry.Create(Ranks.Tiny, CPU, context.Shard);
        using var trainer = new Trainer(Ranks.Tiny, model, data, Recipe, CPU, context);
        var e = Assert.Throws<ExchangeFailedException>(() => trainer.TrainStep());
        Assert.Contains("backward", e.Message);
        Assert.Contains("GradReturn", e.ToString());
        Assert.True(failing.Calls >= 3, $"expected the forward exchanges and the failing backward one, saw {failing.Calls} calls");

        // The process survived: the same model trains on with a working exchange.
        var healthy = new DistributedContext(0, 1, new LocalExchange(), new LocalExchange());
        using var model2 = ModelRegistry.Create(Ranks.Tiny, CPU, healthy.Shard);
        using var trainer2 = new Trainer(Ranks.Tiny, model2, data, Recipe, CPU, healthy);
        Assert.True(double.IsFinite(trainer2.TrainStep().Loss));
    }

    [Fact]
    public void AMissingPeerTimesOutNamingWhatWasAwaited()
    {
        var hub = new InProcessHub(2, TimeSpan.FromMilliseconds(300));
        var tag = new ExchangeTag(4, 1, 2, ExchangePhase.Dispatch);
        var e = Assert.Throws<ExchangeFailedException>(() => hub[0].AllToAll(tag, [torch.zeros(1, 2), torch.zeros(1, 2)], [[1, 2], [1, 2]]));
        Assert.Contains("rank 1", e.Message);
        Assert.Contains("step 4 micro 1 layer 2 Dispatch", e.Message);
    }

    [Fact]
    public void AWronglyShapedPieceIsRefusedWithRankAndPhase()
    {
        var hub = new InProcessHub(2, TimeSpan.FromSeconds(10));
        var tag = new ExchangeTag(0, 0, 0, ExchangePhase.Return);
        var errors = Ranks.Run(2, rank => Record.Exception(() =>
            hub[rank].AllToAll(tag, [torch.zeros(1, rank + 2), torch.zeros(1, rank + 2)], [[1, 2], [1, 2]])));
        var e = Assert.IsType<ExchangeFailedException>(errors[0]);
        Assert.Contains("from rank 1", e.Message);
        Assert.Contains("Return", e.Message);
    }
}
