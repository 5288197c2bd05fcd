using System.Text;
using Jetpack.Model.Checkpoints.Pickle;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>Files that are not readable torch.save zip archives fail with a message that names the file and says why.</summary>
public sealed class TorchArchiveTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static TorchCheckpointFormatException Refused(string path)
    {
        var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path));
        Assert.Contains(Path.GetFullPath(path), e.Message, StringComparison.Ordinal);
        Assert.Equal(Path.GetFullPath(path), e.FilePath);
        return e;
    }

    [Fact]
    public void LegacyFormatNamesTheFixInPython()
    {
        var e = Refused(PickleFixtures.Path("legacy.pth"));
        Assert.Contains("legacy torch.save format is not supported; re-save with torch.save(..., _use_new_zipfile_serialization=True)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TorchScriptArchiveIsNamedAsSuch()
    {
        var e = Refused(PickleFixtures.Path("torchscript.pt"));
        Assert.Contains("TorchScript", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedFileIsNotAReadableZip()
    {
        var e = Refused(PickleFixtures.Path("truncated.pth"));
        Assert.Contains("not a readable zip archive", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0x50, 0x4b })] // 0 bytes is "is empty (0 bytes)": CheckpointFileTests
    [InlineData(new byte[] { 0x7b, 0x7d })] // "{}"
    public void EmptyOrForeignFilesAreRefused(byte[] bytes)
    {
        var e = Refused(_dir.WriteBytes("foreign.pth", bytes));
        Assert.Contains("not a torch.save zip archive", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZipWithoutDataPklIsRefused()
    {
        var path = PickleFixtures.WriteZip(_dir.File("nodata.pth"), [("archive/version", "3\n"u8.ToArray())]);
        Assert.Contains("no <folder>/data.pkl", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoDataPklsAreAmbiguous()
    {
        var pickle = DictPickle();
        var path = PickleFixtures.WriteZip(_dir.File("two.pth"), [("a/data.pkl", pickle), ("b/data.pkl", pickle)]);
        Assert.Contains("ambiguous", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnyTopFolderNameIsAccepted()
    {
        var path = PickleFixtures.WriteArchive(_dir.File("renamed.pth"), OneFloat, Storage4Bytes, prefix: "whatever_name");
        using var checkpoint = TorchCheckpoint.Load(path);
        Assert.Equal(0.5f, checkpoint.StateDict["w"].item<float>());
    }

    [Theory]
    [InlineData("little", true)]
    [InlineData("little\n", true)]
    [InlineData("big", false)]
    public void ByteOrderRecordIsChecked(string order, bool accepted)
    {
        var entries = new List<(string, byte[])>
        {
            ("archive/data.pkl", OneFloat), ("archive/byteorder", Encoding.ASCII.GetBytes(order)),
            ("archive/data/0", Storage4Bytes["0"]), ("archive/version", "3\n"u8.ToArray()),
        };
        var path = PickleFixtures.WriteZip(_dir.File("order.pth"), entries);
        if (accepted)
            TorchCheckpoint.Load(path).Dispose();
        else
            Assert.Contains("only little-endian", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OversizedDataPklIsRefusedUnread()
    {
        var path = PickleFixtures.WriteArchive(_dir.File("huge.pth"), new byte[(32 << 20) + 1]);
        Assert.Contains("beyond the 33554432-byte limit", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingStorageEntryNamesTheKey()
    {
        var path = PickleFixtures.WriteArchive(_dir.File("nostorage.pth"), OneFloat);
        var e = Refused(path);
        Assert.Equal("w", e.Key);
        Assert.Contains("archive/data/0", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(8)]
    public void StorageOfTheWrongSizeIsRefused(int bytes)
    {
        var path = PickleFixtures.WriteArchive(_dir.File("size.pth"), OneFloat, new Dictionary<string, byte[]> { ["0"] = new byte[bytes] });
        var e = Refused(path);
        Assert.Equal("w", e.Key);
        Assert.Contains($"its entry has {bytes} bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BoolStorageMustHoldZerosAndOnes()
    {
        var pickle = DictPickle(("m", Tensor(Storage("BoolStorage", "0", 2), 0, [2], [1])));
        var path = PickleFixtures.WriteArchive(_dir.File("bool.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = [1, 2] });
        Assert.Contains("is byte 2, not 0 or 1", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeflatedEntriesStillRead()
    {
        // torch stores entries uncompressed, but a re-zipped checkpoint may deflate them.
        var path = _dir.File("deflated.pth");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        {
            foreach (var (name, bytes) in new[] { ("archive/data.pkl", OneFloat), ("archive/data/0", Storage4Bytes["0"]) })
            {
                using var stream = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.Optimal).Open();
                stream.Write(bytes);
            }
        }
        using var checkpoint = TorchCheckpoint.Load(path);
        Assert.Equal(0.5f, checkpoint.StateDict["w"].item<float>());
    }

    /// <summary>{'w': a 1-element float tensor in storage '0'}.</summary>
    private static byte[] OneFloat => DictPickle(("w", Tensor(Storage("FloatStorage", "0", 1), 0, [1], [1])));

    private static Dictionary<string, byte[]> Storage4Bytes => new() { ["0"] = BitConverter.GetBytes(0.5f) };
}
