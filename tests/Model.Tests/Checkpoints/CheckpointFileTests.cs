using System.Diagnostics;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Checkpoints.Pickle;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints.Pickle;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Issue 12, item 4: what both readers (and the loaders above them) say about a path that is not
/// a checkpoint of the kind they read — a directory, an empty file, a FIFO or device, a .pth where
/// safetensors is expected — checked in one place, <see cref="CheckpointFile"/>.
/// </summary>
public sealed class CheckpointFileTests : IDisposable
{
    /// <summary>A refusal takes microseconds; a reader blocked in open() on a FIFO never returns.</summary>
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(10);

    private static readonly ModelSpec Micro = new("vit_micro", Vit: new VitConfig { ImageSize = 8, PatchSize = 4, Dim = 8, Depth = 2, Heads = 2, NumClasses = 4 });

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Runs <paramref name="load"/> with a time limit and returns the exception it must throw.</summary>
    private static T Refuses<T>(Action load, string what) where T : Exception
    {
        var task = Task.Run(load);
        Assert.True(Task.WhenAny(task, Task.Delay(HangLimit)).Result == task, $"{what} did not return within {HangLimit} (blocked reading a special file?)");
        var e = Assert.IsType<T>(task.Exception?.InnerException, exactMatch: false);
        return e;
    }

    [Fact]
    public void ADirectoryIsCalledADirectoryByEveryReader()
    {
        string dir = _dir.FullPath;
        Assert.Contains("is a directory", Refuses<SafetensorsFormatException>(() => SafetensorsReader.Open(dir), "safetensors").Message);
        Assert.Contains("is a directory", Refuses<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(dir), "pth").Message);
        var dense = Refuses<InvalidDataException>(() => DenseCheckpoint.Load(dir, Micro), "dense");
        Assert.Contains($"'{dir}' is a directory", dense.Message);
        Assert.DoesNotContain("not found", dense.Message);
    }

    [Fact]
    public void AnEmptyFileIsCalledEmpty()
    {
        var pth = _dir.WriteBytes("empty.pth", []);
        var st = _dir.WriteBytes("empty.safetensors", []);
        Assert.Contains("is empty (0 bytes)", Refuses<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(pth), "pth").Message);
        Assert.Contains("is empty (0 bytes)", Refuses<SafetensorsFormatException>(() => SafetensorsReader.Open(st), "safetensors").Message);
        Assert.Contains("is empty (0 bytes)", Refuses<InvalidDataException>(() => DenseCheckpoint.Load(pth, Micro), "dense").Message);
    }

    [Fact]
    public void AMissingFileIsStillNotFound()
    {
        var missing = _dir.File("missing.safetensors");
        Assert.Contains(missing, Refuses<FileNotFoundException>(() => SafetensorsReader.Open(missing), "safetensors").Message);
        Assert.Contains(missing, Refuses<FileNotFoundException>(() => TorchCheckpoint.Load(missing), "pth").Message);
    }

    [Fact]
    public void AFifoIsRefusedWithoutBlocking()
    {
        var fifo = _dir.File("pipe.pth");
        using (var mkfifo = Process.Start("mkfifo", fifo))
        {
            Assert.True(mkfifo.WaitForExit(10_000), "mkfifo did not finish within 10 s");
            Assert.Equal(0, mkfifo.ExitCode);
        }
        Assert.Contains("FIFO", Refuses<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(fifo), "pth on a FIFO").Message);
        Assert.Contains("FIFO", Refuses<SafetensorsFormatException>(() => SafetensorsReader.Open(fifo), "safetensors on a FIFO").Message);
    }

    [Fact]
    public void ACharacterDeviceIsRefusedWithoutReadingForever()
    {
        Assert.Contains("character device", Refuses<SafetensorsFormatException>(() => SafetensorsReader.Open("/dev/zero"), "/dev/zero").Message);
        Assert.Contains("character device", Refuses<TorchCheckpointFormatException>(() => TorchCheckpoint.Load("/dev/zero"), "/dev/zero").Message);
    }

    [Fact]
    public void APthGivenAsSafetensorsIsNamedAsSuchWhateverItsName()
    {
        var pth = File.ReadAllBytes(PickleFixtures.Path("vit_micro_state_dict.pth"));
        var disguised = _dir.WriteBytes("model.safetensors", pth);
        var e = Refuses<SafetensorsFormatException>(() => SafetensorsReader.Open(disguised), "safetensors");
        Assert.Contains("is a PyTorch .pth file (torch.save), not safetensors", e.Message);
        Assert.Contains("safetensors.torch.save_file", e.Message);

        // `jetpack train`'s init: goes through ModelCheckpoint.Load.
        using var model = ModelRegistry.Create(Micro);
        var init = Refuses<SafetensorsFormatException>(() => ModelCheckpoint.Load(disguised, Micro, model), "init");
        Assert.Contains("is a PyTorch .pth file (torch.save), not a Jetpack model checkpoint", init.Message);

        // A dense checkpoint of either format loads whatever its name says.
        using var dense = DenseCheckpoint.Load(disguised, Micro);
        Assert.True(dense.Report.IsExact);
    }

    [Fact]
    public void FormatsAreToldByMagicBytes()
    {
        Assert.Equal(CheckpointFormat.TorchZip, CheckpointFile.Sniff(PickleFixtures.Path("vit_micro_state_dict.pth")));
        Assert.Equal(CheckpointFormat.TorchLegacy, CheckpointFile.Sniff(PickleFixtures.Path("legacy.pth")));
        Assert.Equal(CheckpointFormat.Safetensors, CheckpointFile.Sniff(PickleFixtures.Path("vit_micro.safetensors")));
        // A 128-byte header's length starts with 0x80, like a pickle: still safetensors.
        var header = "{\"__metadata__\":{\"k\":\"" + new string('x', 128 - 25) + "\"}}";
        Assert.Equal(128, header.Length);
        Assert.Equal(CheckpointFormat.Safetensors, CheckpointFile.Sniff(_dir.WriteSafetensors("h128.safetensors", header)));
        Assert.Equal(CheckpointFormat.Unknown, CheckpointFile.Sniff(_dir.WriteBytes("x.npz", [1, 2, 3])));
    }
}
