using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>Write then read: bytes, dtypes, shapes and metadata come back exactly.</summary>
public sealed class SafetensorsRoundTripTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Every dtype, filled with random bytes: NaN payloads, subnormals and signed zeros
    /// must survive, which only a byte-for-byte path guarantees.</summary>
    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void EveryDTypeRoundTripsBitForBit(SafetensorsDType dtype)
    {
        var random = new Random(1234 + (int)dtype);
        var bytes = new byte[3 * 5 * dtype.ElementSize()];
        random.NextBytes(bytes);
        if (dtype == SafetensorsDType.BOOL)
            for (int i = 0; i < bytes.Length; i++)
                bytes[i] &= 1;
        using var original = FromBytes(bytes, [3, 5], dtype.ToScalarType());

        var path = _dir.File($"{dtype}.safetensors");
        SafetensorsWriter.Write(path, [new("x", original)]);
        using var reader = SafetensorsReader.Open(path);
        using var back = reader.ReadTensor("x");

        Assert.Equal(dtype.ToScalarType(), back.dtype);
        Assert.Equal(new long[] { 3, 5 }, back.shape);
        Assert.Equal(bytes, back.bytes.ToArray());
        Assert.Equal(dtype, reader.GetEntry("x").DType);
    }

    public static TheoryData<SafetensorsDType> AllDTypes() => new(Enum.GetValues<SafetensorsDType>());

    /// <summary>Known half-precision bit patterns decode to the values IEEE and bfloat16 define.</summary>
    [Fact]
    public void HalfPrecisionBitPatternsDecodeToTheirValues()
    {
        // F16: 1.0, -2.0, 65504 (largest finite), 2^-24 (smallest subnormal)
        ushort[] f16 = [0x3C00, 0xC000, 0x7BFF, 0x0001];
        // BF16: 1.0, -2.0, +inf, 2^-133 (smallest subnormal)
        ushort[] bf16 = [0x3F80, 0xC000, 0x7F80, 0x0001];
        using var half = FromBytes(ToBytes(f16), [4], torch.ScalarType.Float16);
        using var brain = FromBytes(ToBytes(bf16), [4], torch.ScalarType.BFloat16);

        var path = _dir.File("half.safetensors");
        SafetensorsWriter.Write(path, [new("f16", half), new("bf16", brain)]);
        using var reader = SafetensorsReader.Open(path);
        using var f16Back = reader.ReadTensor("f16");
        using var bf16Back = reader.ReadTensor("bf16");
        using var f16Float = f16Back.to(torch.ScalarType.Float32);
        using var bf16Float = bf16Back.to(torch.ScalarType.Float32);

        Assert.Equal(new[] { 1f, -2f, 65504f, MathF.Pow(2, -24) }, f16Float.data<float>().ToArray());
        Assert.Equal(new[] { 1f, -2f, float.PositiveInfinity, MathF.Pow(2, -133) }, bf16Float.data<float>().ToArray());
    }

    [Fact]
    public void ZeroDimensionalTensorRoundTrips()
    {
        using var scalar = torch.tensor(3.25);
        var path = _dir.File("scalar.safetensors");
        SafetensorsWriter.Write(path, [new("s", scalar)]);

        using var reader = SafetensorsReader.Open(path);
        Assert.Empty(reader.GetEntry("s").Shape);
        using var back = reader.ReadTensor("s");
        Assert.Equal(0, back.dim());
        Assert.Equal(3.25, back.item<double>());
    }

    [Fact]
    public void EmptyTensorsRoundTripAmongOthers()
    {
        using var empty = torch.zeros(4, 0, 3);
        using var before = torch.arange(3, dtype: torch.ScalarType.Int32);
        using var alsoEmpty = torch.zeros(0, dtype: torch.ScalarType.Int64);
        using var after = torch.ones(2, dtype: torch.ScalarType.Float64);
        var path = _dir.File("empty.safetensors");
        SafetensorsWriter.Write(path, [new("empty", empty), new("before", before), new("also_empty", alsoEmpty), new("after", after)]);

        using var reader = SafetensorsReader.Open(path);
        using var back = reader.ReadTensor("empty");
        Assert.Equal(new long[] { 4, 0, 3 }, back.shape);
        Assert.Equal(0, reader.GetEntry("empty").ByteLength);
        using var afterBack = reader.ReadTensor("after");
        TensorAssert.Identical(after, afterBack);
        using var beforeBack = reader.ReadTensor("before");
        TensorAssert.Identical(before, beforeBack);
    }

    [Fact]
    public void NonContiguousInputIsWrittenInLogicalOrder()
    {
        using var matrix = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using var transposed = matrix.t(); // [3, 2], strides (1, 3)
        Assert.False(transposed.is_contiguous());
        var path = _dir.File("transposed.safetensors");
        SafetensorsWriter.Write(path, [new("t", transposed)]);

        using var reader = SafetensorsReader.Open(path);
        using var back = reader.ReadTensor("t");
        Assert.Equal(new long[] { 3, 2 }, back.shape);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, back.data<float>().ToArray());
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["variant"] = "vit_tiny", ["note"] = "ünïcödé \"quoted\"" };
        using var x = torch.ones(2);
        var path = _dir.File("meta.safetensors");
        SafetensorsWriter.Write(path, [new("x", x)], metadata);

        using var reader = SafetensorsReader.Open(path);
        Assert.Equal(metadata.OrderBy(kv => kv.Key), reader.Metadata.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void FileWithoutMetadataOrTensorsReadsAsEmpty()
    {
        var path = _dir.File("nothing.safetensors");
        SafetensorsWriter.Write(path, []);
        using var reader = SafetensorsReader.Open(path);
        Assert.Empty(reader.Names);
        Assert.Empty(reader.Metadata);
        Assert.Empty(reader.ReadAll());
    }

    [Fact]
    public void NamesFollowDataOrderAndReadAllReturnsEveryTensor()
    {
        using var a = torch.ones(2);
        using var b = torch.zeros(3, dtype: torch.ScalarType.Int8);
        using var c = torch.full(1, 7L);
        var path = _dir.File("order.safetensors");
        SafetensorsWriter.Write(path, [new("z.last_name", a), new("a.first_name", b), new("m", c)]);

        using var reader = SafetensorsReader.Open(path);
        Assert.Equal(["z.last_name", "a.first_name", "m"], reader.Names);
        Assert.True(reader.Contains("m"));
        Assert.False(reader.Contains("missing"));
        var all = reader.ReadAll(torch.CPU);
        try
        {
            Assert.Equal(reader.Names.Order(), all.Keys.Order());
            TensorAssert.Identical(c, all["m"]);
        }
        finally
        {
            foreach (var t in all.Values) t.Dispose();
        }
    }

    [Fact]
    public void UnknownNameThrowsKeyNotFoundNamingFileAndTensor()
    {
        using var x = torch.ones(1);
        var path = _dir.File("known.safetensors");
        SafetensorsWriter.Write(path, [new("x", x)]);
        using var reader = SafetensorsReader.Open(path);

        var e = Assert.Throws<KeyNotFoundException>(() => reader.ReadTensor("blocks.0.attn.qkv.weight"));
        Assert.Contains("known.safetensors", e.Message);
        Assert.Contains("blocks.0.attn.qkv.weight", e.Message);
        Assert.Throws<KeyNotFoundException>(() => reader.GetEntry("nope"));
    }

    [Fact]
    public void GetEntryReturnsACopyTheCallerMayMutate()
    {
        using var x = torch.ones(2, 3);
        var path = _dir.File("entry.safetensors");
        SafetensorsWriter.Write(path, [new("x", x)]);
        using var reader = SafetensorsReader.Open(path);

        var entry = reader.GetEntry("x");
        Assert.Equal(new SafetensorsEntry("x", SafetensorsDType.F32, [2, 3], 0, 24).ToString(), entry.ToString());
        entry.Shape[0] = 99;
        using var back = reader.ReadTensor("x");
        Assert.Equal(new long[] { 2, 3 }, back.shape);
    }

    [Fact]
    public void ReadingAfterDisposeThrowsObjectDisposed()
    {
        using var x = torch.ones(2);
        var path = _dir.File("disposed.safetensors");
        SafetensorsWriter.Write(path, [new("x", x)]);
        var reader = SafetensorsReader.Open(path);
        reader.Dispose();
        Assert.Throws<ObjectDisposedException>(() => reader.ReadTensor("x"));
        Assert.Equal(["x"], reader.Names); // the header stays available
    }

    /// <summary>Positioned reads share no file cursor, so threads may read one reader at once.</summary>
    [Fact]
    public void ConcurrentReadsFromOneReaderAgree()
    {
        var tensors = Enumerable.Range(0, 16).Select(i => torch.full(1000 + i, (float)i)).ToArray();
        try
        {
            var path = _dir.File("concurrent.safetensors");
            SafetensorsWriter.Write(path, tensors.Select((t, i) => new KeyValuePair<string, torch.Tensor>($"t{i}", t)));
            using var reader = SafetensorsReader.Open(path);
            Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
            {
                int i = k % tensors.Length;
                using var back = reader.ReadTensor($"t{i}");
                TensorAssert.Identical(tensors[i], back);
            });
        }
        finally
        {
            foreach (var t in tensors) t.Dispose();
        }
    }

    internal static torch.Tensor FromBytes(byte[] bytes, long[] shape, torch.ScalarType type)
    {
        var tensor = torch.empty(shape, type);
        bytes.CopyTo(tensor.bytes);
        return tensor;
    }

    private static byte[] ToBytes(ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), values[i]);
        return bytes;
    }
}

public class SafetensorsRowReadTests
{
    [Fact]
    public void ReadRowsEqualsTheNarrowedTensor()
    {
        using var dir = new TempDirectory();
        using var scope = TorchSharp.torch.NewDisposeScope();
        var t = TorchSharp.torch.arange(5 * 3 * 2, dtype: TorchSharp.torch.ScalarType.Float32).reshape(5, 3, 2);
        var path = dir.File("rows.safetensors");
        SafetensorsWriter.Write(path, [new("t", t)]);
        using var reader = SafetensorsReader.Open(path);
        Assert.True(reader.ReadRows("t", 1, 3).eq(t.narrow(0, 1, 3)).all().item<bool>());
        Assert.Equal([0L, 3, 2], reader.ReadRows("t", 5, 0).shape);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => reader.ReadRows("t", 4, 2));
        Assert.Contains("rows [4, 6)", e.Message);
    }
}
