using Jetpack.Model.Data;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data;

/// <summary>Batch tensors over pooled buffers: written in place, reused after torch frees them, never while a tensor still shares them.</summary>
public sealed class BatchBuffersTests
{
    [Fact]
    public void ABufferIsReusedOnlyOnceNoTensorSharesItAnyMore()
    {
        long[] shape = [2, 3, 5, 7];                                   // a size no other test uses: the pool is per size
        var first = BatchBuffers.Rent(shape);
        first.Sample(0).Fill(1f);
        first.Sample(1).Fill(2f);
        using (var sample = first.Tensor[1])
            Assert.Equal(2f * 105, sample.sum().item<float>());      // the tensor is the buffer, not a copy
        var alias = first.Tensor.to(CPU);                              // on CPU the same storage
        first.Tensor.Dispose();
        var second = BatchBuffers.Rent(shape);
        Assert.NotEqual(first.Address, second.Address);                // the alias holds the first buffer: another one
        using (var sample = alias[1])
            Assert.Equal(2f * 105, sample.sum().item<float>());      // and the alias still reads its values
        alias.Dispose();                                               // torch frees the storage: the buffer comes back
        second.Tensor.Dispose();
        var third = BatchBuffers.Rent(shape);
        var fourth = BatchBuffers.Rent(shape);
        Assert.Equal(new[] { first.Address, second.Address }.Order(), new[] { third.Address, fourth.Address }.Order());   // both reused
        third.Tensor.Dispose();
        fourth.Tensor.Dispose();
    }

    [Fact]
    public void SamplesAreTheirSlicesOfTheBatch()
    {
        var batch = BatchBuffers.Rent([3, 2, 2, 2]);
        using var tensor = batch.Tensor;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 8; j++) batch.Sample(i)[j] = 10 * i + j;
        Assert.Equal(new long[] { 3, 2, 2, 2 }, tensor.shape);
        Assert.Equal(Enumerable.Range(0, 3).SelectMany(i => Enumerable.Range(0, 8).Select(j => (float)(10 * i + j))), tensor.data<float>().ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Sample(3));
    }
}
