using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>The writer is all-or-nothing: a failure never leaves a temp file nor damages the old file.</summary>
public sealed class SafetensorsWriterTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string[] FilesInDirectory() =>
        Directory.GetFileSystemEntries(_dir.FullPath).Select(p => Path.GetFileName(p)!).Order().ToArray();

    private string WriteOriginal(string fileName)
    {
        using var original = torch.ones(3);
        var path = _dir.File(fileName);
        SafetensorsWriter.Write(path, [new("original", original)]);
        return path;
    }

    [Fact]
    public void SuccessLeavesOnlyTheTargetFile()
    {
        WriteOriginal("model.safetensors");
        Assert.Equal(["model.safetensors"], FilesInDirectory());
    }

    [Fact]
    public void OverwritesAnExistingFile()
    {
        var path = WriteOriginal("model.safetensors");
        using var replacement = torch.zeros(2, dtype: torch.ScalarType.Int64);
        SafetensorsWriter.Write(path, [new("replacement", replacement)]);

        using var reader = SafetensorsReader.Open(path);
        Assert.Equal(["replacement"], reader.Names);
        Assert.Equal(["model.safetensors"], FilesInDirectory());
    }

    [Fact]
    public void DuplicateNameFailsWithoutTouchingTheExistingFile()
    {
        var path = WriteOriginal("model.safetensors");
        var before = File.ReadAllBytes(path);
        using var x = torch.ones(2);
        using var y = torch.zeros(2);

        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("w", x), new("b", y), new("w", y)]));
        Assert.Contains("'w'", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], FilesInDirectory());
    }

    [Theory]
    [InlineData("")]
    [InlineData("__metadata__")]
    public void ReservedOrEmptyNamesAreRefused(string name)
    {
        using var x = torch.ones(2);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(_dir.File("bad.safetensors"), [new(name, x)]));
        Assert.Empty(FilesInDirectory());
    }

    [Fact]
    public void UnsupportedDTypeIsRefusedNamingTheTensor()
    {
        using var complex = torch.zeros(2, dtype: torch.ScalarType.ComplexFloat32);
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(_dir.File("bad.safetensors"), [new("phase", complex)]));
        Assert.Contains("'phase'", e.Message);
        Assert.Contains("ComplexFloat32", e.Message);
        Assert.Empty(FilesInDirectory());
    }

    [Fact]
    public void DisposedTensorIsRefused()
    {
        var gone = torch.ones(2);
        gone.Dispose();
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(_dir.File("bad.safetensors"), [new("gone", gone)]));
        Assert.Contains("'gone'", e.Message);
    }

    /// <summary>A failure after the temp file is complete (here: the rename, because the target is
    /// a directory) still removes the temp file.</summary>
    [Fact]
    public void FailedRenameRemovesTheTempFile()
    {
        var target = _dir.File("taken");
        Directory.CreateDirectory(target);
        using var x = torch.ones(2);

        Assert.ThrowsAny<IOException>(() => SafetensorsWriter.Write(target, [new("x", x)]));
        Assert.Equal(["taken"], FilesInDirectory());
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public void MissingDirectoryFailsCleanly()
    {
        using var x = torch.ones(2);
        Assert.Throws<DirectoryNotFoundException>(() => SafetensorsWriter.Write(_dir.File("no/such/dir/x.safetensors"), [new("x", x)]));
        Assert.Empty(FilesInDirectory());
    }

    [Fact]
    public void NullMetadataValueIsRefused()
    {
        using var x = torch.ones(2);
        var metadata = new Dictionary<string, string> { ["k"] = null! };
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(_dir.File("bad.safetensors"), [new("x", x)], metadata));
        Assert.Empty(FilesInDirectory());
    }

    [Fact]
    public void TensorsThatRequireGradAreWritten()
    {
        using var weight = torch.randn(4, 4, requires_grad: true);
        var path = _dir.File("grad.safetensors");
        SafetensorsWriter.Write(path, [new("weight", weight)]);

        using var reader = SafetensorsReader.Open(path);
        using var back = reader.ReadTensor("weight");
        using var expected = weight.detach();
        TensorAssert.Identical(expected, back);
        Assert.False(back.requires_grad);
    }
}
