using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Reads a file written by a second, independent implementation of the format:
/// Fixtures/make_fixture.py (struct + json + numpy). Regenerate it with
/// <c>/usr/bin/python3 tests/Model.Tests/Checkpoints/Fixtures/make_fixture.py</c>.
/// </summary>
public sealed class SafetensorsPythonFixtureTests
{
    private static readonly string FixturePath =
        Path.Combine(AppContext.BaseDirectory, "Checkpoints", "Fixtures", "python_written.safetensors");

    [Fact]
    public void ReadsTheFileNumpyWrote()
    {
        using var reader = SafetensorsReader.Open(FixturePath);

        // The header lists the tensors in reverse; Names follows the data.
        Assert.Equal(["weight", "ids", "bf16", "pixels", "mask"], reader.Names);
        Assert.Equal("pt", reader.Metadata["format"]);
        Assert.Equal("make_fixture.py", reader.Metadata["written_by"]);

        using var weight = reader.ReadTensor("weight");
        Assert.Equal(torch.ScalarType.Float32, weight.dtype);
        Assert.Equal(new long[] { 2, 3 }, weight.shape);
        var w = weight.data<float>().ToArray();
        Assert.Equal(new[] { 1.5f, -2f, 3.25f, 0f, -0f, 1e-3f }, w);
        Assert.True(float.IsNegative(w[4]), "-0.0 must keep its sign bit");

        using var ids = reader.ReadTensor("ids");
        Assert.Equal(new[] { 0L, -1L, 1L << 40, long.MaxValue }, ids.data<long>().ToArray());

        using var bf16 = reader.ReadTensor("bf16");
        Assert.Equal(torch.ScalarType.BFloat16, bf16.dtype);
        using var bf16AsFloat = bf16.to(torch.ScalarType.Float32);
        Assert.Equal(new[] { 1f, -3f }, bf16AsFloat.data<float>().ToArray());

        using var pixels = reader.ReadTensor("pixels");
        Assert.Equal(torch.ScalarType.Byte, pixels.dtype);
        Assert.Equal(new byte[] { 0, 128, 255 }, pixels.data<byte>().ToArray());

        using var mask = reader.ReadTensor("mask");
        Assert.Equal(torch.ScalarType.Bool, mask.dtype);
        Assert.Equal(new long[] { 2, 2 }, mask.shape);
        Assert.Equal(new[] { true, false, false, true }, mask.data<bool>().ToArray());
    }

    /// <summary>Our writer, given the same tensors in data order, produces the same data section.</summary>
    [Fact]
    public void OurWriterReproducesTheFixtureData()
    {
        using var reader = SafetensorsReader.Open(FixturePath);
        var tensors = reader.ReadAll();
        var dir = new TempDirectory();
        try
        {
            var path = dir.File("rewritten.safetensors");
            SafetensorsWriter.Write(path, reader.Names.Select(n => new KeyValuePair<string, torch.Tensor>(n, tensors[n])), reader.Metadata);
            var ours = File.ReadAllBytes(path);
            var theirs = File.ReadAllBytes(FixturePath);
            long ourHeader = BitConverter.ToInt64(ours, 0), theirHeader = BitConverter.ToInt64(theirs, 0);
            Assert.Equal(theirs[(int)(8 + theirHeader)..], ours[(int)(8 + ourHeader)..]);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
            dir.Dispose();
        }
    }
}
