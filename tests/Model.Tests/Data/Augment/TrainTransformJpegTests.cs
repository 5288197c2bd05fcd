using System.Diagnostics;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Tests.Checkpoints;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>
/// JPEG decode + the full spec §7.2 train transform at 224², end to end. It also prints the
/// single-thread throughput (a benchmark figure, not an assertion); set
/// JETPACK_AUGMENT_BENCH=200 to time 200 images instead of the default 12.
/// </summary>
public sealed class TrainTransformJpegTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void DecodesAndAugmentsJpegsAt224()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("JETPACK_AUGMENT_BENCH"), out var n) && n > 0 ? n : 12;
        // ImageNet-like sizes and content (smooth gradients plus texture), JPEG quality 95.
        (int W, int H)[] sizes = [(500, 375), (375, 500), (640, 480), (500, 333)];
        var files = sizes.Select((s, i) =>
        {
            var path = Path.Combine(_dir.FullPath, $"img{i}.jpg");
            File.WriteAllBytes(path, TestImages.Jpeg(s.W, s.H, (x, y) =>
                ((byte)(x * 255 / s.W), (byte)(y * 255 / s.H), (byte)((x * y + 31 * i) % 251), 255)));
            return path;
        }).ToArray();
        var transform = new TrainTransform(AugmentOptions.ImageNet(224));

        int threads = get_num_threads();
        set_num_threads(1);   // per-core figure; restored below
        try
        {
            Run(files, transform, 3);   // warm-up: torch kernels, JIT
            var watch = Stopwatch.StartNew();
            Run(files, transform, count);
            watch.Stop();
            output.WriteLine($"JPEG decode + train transform (224², 1 thread): {count / watch.Elapsed.TotalSeconds:F1} images/s over {count} images");
            watch.Restart();
            for (int i = 0; i < count; i++) ImageDecoder.Decode(files[i % files.Length], transform.Channels);
            output.WriteLine($"JPEG decode alone: {count / watch.Elapsed.TotalSeconds:F1} images/s");
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    private static void Run(string[] files, TrainTransform transform, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var pixels = ImageDecoder.Decode(files[i % files.Length], transform.Channels);
            using var x = transform.Apply(pixels, AugmentRandom.SampleSeed(3407, 0, i));
            Assert.Equal(new long[] { 3, 224, 224 }, x.shape);
            Assert.True(x.isfinite().all().item<bool>());
        }
    }
}
