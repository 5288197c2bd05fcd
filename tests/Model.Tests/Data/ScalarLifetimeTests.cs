using Jetpack.Model.Data;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data;

/// <summary>
/// The resize of the decode threads under garbage collection: TorchSharp's add(Scalar) makes its alpha as a temporary
/// Scalar that a collection may finalize while the native add still reads it. `bench data` failed with "toFloat:
/// Expected false to be true" in its first pass, twice in a row, with 2 decode threads on an idle machine. With the
/// implicit alpha this test failed 4 runs of 4 (within a second); with the held one it passed 5 of 5.
/// </summary>
public sealed class ScalarLifetimeTests
{
    [Fact]
    public async Task TheBicubicResizeSurvivesCollectionsOnParallelThreads()
    {
        using var stop = new CancellationTokenSource();
        var collector = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        });
        try
        {
            Parallel.For(0, 300, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                using var scope = NewDisposeScope();
                var x = rand([3, 375, 500]).mul_(EvalTransform.Full);                              // [c, h, w]: an ImageNet-sized photo on the 8-bit scale
                var y = EvalTransform.ResizeBicubicLikePil(x, 341, 256);              // [c, 256, 341]: the eval resize (the add reads the alpha for ms)
                Assert.Equal([3L, 256, 341], y.shape);
            });
        }
        finally
        {
            stop.Cancel();
            await collector;
        }
    }
}
