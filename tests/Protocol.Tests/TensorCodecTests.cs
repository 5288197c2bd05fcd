using Google.Protobuf;
using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Protocol.Tests;

public class TensorCodecTests
{
    static Tensor Sample(ScalarType dtype, long[] shape, int seed)
    {
        var g = new Generator((ulong)seed);
        return dtype switch
        {
            ScalarType.Bool => randint(0, 2, shape, generator: g).to(ScalarType.Bool),
            ScalarType.Byte => randint(0, 256, shape, generator: g).to(ScalarType.Byte),
            ScalarType.Int8 => randint(-128, 128, shape, generator: g).to(ScalarType.Int8),
            ScalarType.Int16 or ScalarType.Int32 or ScalarType.Int64 => randint(-30000, 30000, shape, generator: g).to(dtype),
            _ => randn(shape, generator: g).mul(1e3).to(dtype),
        };
    }

    /// <summary>Sends a tensor through header + chunks + validation + assembler, with a small buffer so it takes many chunks.</summary>
    static Tensor RoundTrip(Tensor t, int chunk, Tensor? destination = null)
    {
        using var readable = TensorCodec.Readable(t);
        var header = TensorCodec.Header("x", readable);
        var wire = TensorHeader.Parser.ParseFrom(header.ToByteArray());   // through protobuf bytes too
        TensorCodec.Validate(wire, t.dtype, t.shape, WireLimits.Default, "test");
        using var asm = new TensorAssembler(wire, t.dtype, "test", destination);
        var buffer = new byte[chunk];
        int chunks = 0;
        foreach (var piece in TensorCodec.Chunks(readable, buffer))
        {
            var frame = TensorChunk.Parser.ParseFrom(new TensorChunk { Data = piece }.ToByteArray());
            asm.Append(frame.Data.Span);
            chunks++;
        }
        Assert.Equal((wire.ByteLength + chunk - 1) / chunk, chunks);
        return asm.Complete();
    }

    public static TheoryData<string> DTypes() => new(Enum.GetNames<DType>().Where(n => n != nameof(DType.Unspecified)));

    [Theory]
    [MemberData(nameof(DTypes))]
    public void EveryDtypeRoundTripsBitExactly(string name)
    {
        var dtype = WireDTypes.ToTorch(Enum.Parse<DType>(name))!.Value;
        using var t = Sample(dtype, [3, 5, 7], seed: 1);
        using var back = RoundTrip(t, chunk: 16);
        Assert.Equal(dtype, back.dtype);
        Assert.Equal(t.shape, back.shape);
        Assert.True(t.bytes.SequenceEqual(back.bytes), $"{name}: bytes differ after the round trip");
    }

    [Fact]
    public void Bf16TravelsAsTwoBytesPerElementAndKeepsItsValues()
    {
        using var t = tensor(new float[] { 1f, -2.5f, 3.140625f, 65280f, 1e-30f }).to(ScalarType.BFloat16);
        Assert.Equal(10, TensorCodec.Header("b", t).ByteLength);
        using var back = RoundTrip(t, chunk: 3 * 2);
        Assert.True(back.to(ScalarType.Float32).eq(t.to(ScalarType.Float32)).all().item<bool>());
    }

    [Fact]
    public void NonContiguousAndEmptyAndScalarTensorsRoundTrip()
    {
        using var m = Sample(ScalarType.Float32, [4, 6], 2);
        using var tr = m.t();                                               // [6, 4], a strided view
        using var back = RoundTrip(tr, chunk: 20);
        Assert.True(back.eq(tr).all().item<bool>());
        using var e = zeros(0, 3);
        using var eb = RoundTrip(e, chunk: 8);
        Assert.Equal(new long[] { 0, 3 }, eb.shape);
        using var s = tensor(7.5f);
        using var sb = RoundTrip(s, chunk: 8);
        Assert.Equal(7.5f, sb.item<float>());
    }

    [Fact]
    public void AReusedDestinationReceivesTheBytesInPlace()
    {
        using var dest = empty(5, 5);
        using var a = Sample(ScalarType.Float32, [5, 5], 3);
        using var b = Sample(ScalarType.Float32, [5, 5], 4);
        var r1 = RoundTrip(a, 32, dest);
        Assert.Same(dest, r1);
        Assert.True(dest.eq(a).all().item<bool>());
        RoundTrip(b, 32, dest);
        Assert.True(dest.eq(b).all().item<bool>());
    }

    static TensorHeader Header(DType dtype, long bytes, params long[] shape)
    {
        var h = new TensorHeader { Name = "slots", Dtype = dtype, ByteLength = bytes };
        h.Shape.Add(shape);
        return h;
    }

    static string Refused(Action a)
    {
        var e = Assert.Throws<RpcException>(a);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        return e.Status.Detail;
    }

    [Fact]
    public void WrongShapeIsRefusedSayingExpectedAndReceived()
    {
        var msg = Refused(() => TensorCodec.Validate(Header(DType.Float32, 2 * 4 * 4, 2, 4), ScalarType.Float32, [2, 3], WireLimits.Default, "rank 1 dispatch"));
        Assert.Contains("rank 1 dispatch", msg);
        Assert.Contains("shape [2, 4], expected [2, 3]", msg);
    }

    [Fact]
    public void WrongDtypeIsRefused()
    {
        var msg = Refused(() => TensorCodec.Validate(Header(DType.Bfloat16, 6 * 2, 2, 3), ScalarType.Float32, [2, 3], WireLimits.Default, "w"));
        Assert.Contains("dtype Bfloat16, expected Float32", msg);
        Refused(() => TensorCodec.Validate(Header(DType.Unspecified, 24, 2, 3), ScalarType.Float32, [2, 3], WireLimits.Default, "w"));
        Refused(() => TensorCodec.Validate(Header((DType)77, 24, 2, 3), ScalarType.Float32, [2, 3], WireLimits.Default, "w"));
    }

    [Fact]
    public void OversizeTensorsAreRefusedFromTheHeaderAlone()
    {
        var limits = new WireLimits { MaxTensorBytes = 1000 };
        var msg = Refused(() => TensorCodec.ValidateHeader(Header(DType.Float32, 1004, 251), limits, "w"));
        Assert.Contains("exceeds the limit of 1000 bytes", msg);
        // products that overflow a long must not wrap around into something small
        Refused(() => TensorCodec.ValidateHeader(Header(DType.Float32, 16, 1L << 40, 1L << 40, 1L << 40, 4), limits, "w"));
        Refused(() => TensorCodec.ValidateHeader(Header(DType.Float32, 4, -1, -4), limits, "w"));
        Refused(() => TensorCodec.ValidateHeader(Header(DType.Float32, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1), limits, "w"));
    }

    [Fact]
    public void InconsistentByteLengthAndMissingHeaderAreRefused()
    {
        Assert.Contains("byte_length 20, expected 24", Refused(() => TensorCodec.ValidateHeader(Header(DType.Float32, 20, 2, 3), WireLimits.Default, "w")));
        Assert.Contains("no tensor header", Refused(() => TensorCodec.ValidateHeader(null, WireLimits.Default, "w")));
    }

    [Fact]
    public void StreamsWithTooManyOrTooFewBytesAreRefused()
    {
        var h = Header(DType.Float32, 8, 2);
        using (var asm = new TensorAssembler(h, ScalarType.Float32, "w"))
        {
            asm.Append(new byte[6]);
            Assert.Contains("more data than", Refused(() => asm.Append(new byte[4])));
        }
        using (var asm = new TensorAssembler(h, ScalarType.Float32, "w"))
        {
            asm.Append(new byte[4]);
            Assert.Contains("ended after 4 of 8 bytes", Refused(() => asm.Complete()));
        }
    }
}
