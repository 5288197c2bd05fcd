using System.Text;
using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>Byte-level checks against files assembled by hand from the format description,
/// so reader and writer cannot agree on a mistake and still pass.</summary>
public sealed class SafetensorsGoldenTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("")]
    [InlineData("     ")]   // the reference writer pads with spaces to an 8-byte boundary
    [InlineData(" \n\t ")] // any JSON whitespace is still JSON
    public void ReadsAHandAssembledFile(string padding)
    {
        // Header order differs from data order on purpose: Names must follow the data.
        var json = Quote("{'n':{'dtype':'I64','shape':[],'data_offsets':[8,16]},'__metadata__':{'who':'hand'}," +
                         "'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}") + padding;
        byte[] data =
        [
            0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x80, 0xBF, // F32 0.5, -1.0
            0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // I64 -3
        ];
        var path = _dir.WriteSafetensors("hand.safetensors", json, data);

        using var reader = SafetensorsReader.Open(path);
        Assert.Equal(["w", "n"], reader.Names);
        Assert.Equal("hand", reader.Metadata["who"]);
        Assert.Equal(new SafetensorsEntry("n", SafetensorsDType.I64, [], 8, 16).ToString(), reader.GetEntry("n").ToString());
        using var w = reader.ReadTensor("w");
        using var n = reader.ReadTensor("n");
        Assert.Equal(new[] { 0.5f, -1f }, w.data<float>().ToArray());
        Assert.Equal(0, n.dim());
        Assert.Equal(-3L, n.item<long>());
    }

    [Fact]
    public void WriterProducesTheExpectedBytes()
    {
        using var a = torch.tensor(new[] { 1f, -2f });
        using var b = torch.tensor((short)0x0102);
        var path = _dir.File("tiny.safetensors");
        SafetensorsWriter.Write(path, [new("a", a), new("b", b)], new Dictionary<string, string> { ["k"] = "v" });

        // 132 bytes of JSON + 4 spaces = 136: 8 + 136 puts the data at byte 144, a multiple of 8.
        var json = Quote("{'__metadata__':{'k':'v'},'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}," +
                         "'b':{'dtype':'I16','shape':[],'data_offsets':[8,10]}}") + "    ";
        byte[] expected =
        [
            0x88, 0, 0, 0, 0, 0, 0, 0, // header length 136, u64 little-endian
            .. Encoding.ASCII.GetBytes(json),
            0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, // F32 1.0, -2.0
            0x02, 0x01,                                     // I16 0x0102
        ];
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void WriterPadsEveryHeaderToAnEightByteBoundary()
    {
        for (int nameLength = 1; nameLength <= 9; nameLength++)
        {
            using var x = torch.ones(1);
            var path = _dir.File($"pad{nameLength}.safetensors");
            SafetensorsWriter.Write(path, [new(new string('x', nameLength), x)]);
            var bytes = File.ReadAllBytes(path);
            long headerLength = BitConverter.ToInt64(bytes, 0);
            Assert.Equal(0, (8 + headerLength) % 8);
            Assert.Equal(8 + headerLength + 4, bytes.Length);
        }
    }

    /// <summary>JSON written with single quotes for legibility, turned into real JSON.</summary>
    internal static string Quote(string singleQuoted) => singleQuoted.Replace('\'', '"');
}
