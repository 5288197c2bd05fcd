using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.Protocol.Codec;

/// <summary>The table between torch element types and the wire's <see cref="DType"/>.</summary>
public static class WireDTypes
{
    static readonly (ScalarType Torch, DType Wire, int Size)[] Table =
    [
        (ScalarType.Float32, DType.Float32, 4),
        (ScalarType.BFloat16, DType.Bfloat16, 2),
        (ScalarType.Float16, DType.Float16, 2),
        (ScalarType.Float64, DType.Float64, 8),
        (ScalarType.Int64, DType.Int64, 8),
        (ScalarType.Int32, DType.Int32, 4),
        (ScalarType.Int16, DType.Int16, 2),
        (ScalarType.Int8, DType.Int8, 1),
        (ScalarType.Byte, DType.Uint8, 1),
        (ScalarType.Bool, DType.Bool, 1),
    ];

    public static DType ToWire(ScalarType t)
    {
        foreach (var e in Table) if (e.Torch == t) return e.Wire;
        throw new ArgumentException($"dtype {t} has no wire encoding");
    }

    /// <summary>The torch type of a wire dtype, or null when the value is unknown or unspecified.</summary>
    public static ScalarType? ToTorch(DType d)
    {
        foreach (var e in Table) if (e.Wire == d) return e.Torch;
        return null;
    }

    public static int ElementSize(DType d)
    {
        foreach (var e in Table) if (e.Wire == d) return e.Size;
        throw new ArgumentException($"wire dtype {d} is not supported");
    }
}
