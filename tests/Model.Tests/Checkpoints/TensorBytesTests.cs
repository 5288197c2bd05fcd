using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>The chunked path that tensors beyond 2 GiB take, exercised with tiny chunks.</summary>
public sealed class TensorBytesTests
{
    [Theory]
    [InlineData(1000)] // 125 doubles per chunk: 8 chunks exactly
    [InlineData(1001)] // rounds down to whole elements
    [InlineData(24)]   // 3 elements: a ragged last chunk
    [InlineData(1)]    // below one element: still one element per chunk
    public void ChunksAreConsecutiveViewsOfTheStorage(long maxChunkBytes)
    {
        using var tensor = torch.zeros(10, 100, dtype: torch.ScalarType.Float64);
        var chunks = new List<(long Offset, int Length)>();
        TensorBytes.ForEachChunk(tensor, (chunk, offset) =>
        {
            chunks.Add((offset, chunk.Length));
            for (int i = 0; i < chunk.Length; i++)
                chunk[i] = (byte)((offset + i) % 251); // writes through the view
        }, maxChunkBytes);

        long expectedOffset = 0;
        foreach (var (offset, length) in chunks)
        {
            Assert.Equal(expectedOffset, offset);
            Assert.True(length <= Math.Max(maxChunkBytes / 8 * 8, 8));
            Assert.Equal(0, length % 8);
            expectedOffset += length;
        }
        Assert.Equal(8000, expectedOffset);
        var bytes = tensor.bytes.ToArray();
        for (int i = 0; i < bytes.Length; i++)
            Assert.Equal((byte)(i % 251), bytes[i]);
    }

    [Fact]
    public void SmallTensorIsOneChunk()
    {
        using var tensor = torch.ones(3, 4);
        int calls = 0;
        TensorBytes.ForEachChunk(tensor, (chunk, offset) => { calls++; Assert.Equal(48, chunk.Length); Assert.Equal(0, offset); });
        Assert.Equal(1, calls);
    }

    [Fact]
    public void EmptyTensorHasNoChunks()
    {
        using var tensor = torch.zeros(0, 5);
        TensorBytes.ForEachChunk(tensor, (_, _) => Assert.Fail("no chunk expected"));
    }

    [Fact]
    public void NonContiguousTensorIsRefused()
    {
        using var matrix = torch.ones(2, 3);
        using var transposed = matrix.t();
        Assert.Throws<ArgumentException>(() => TensorBytes.ForEachChunk(transposed, (_, _) => { }));
    }
}
