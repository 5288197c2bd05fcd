using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// The element types of the safetensors format that TorchSharp can hold. The member names are
/// the exact strings of the header's "dtype" field. Unsigned 16/32/64-bit and the FP8 types of
/// the format are absent because TorchSharp 0.107 has no scalar type for them.
/// </summary>
public enum SafetensorsDType
{
    BOOL,
    U8,
    I8,
    I16,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
}

/// <summary>The one table that maps safetensors dtypes to header strings, torch types and sizes.</summary>
public static class SafetensorsDTypes
{
    /// <summary>The header string of <paramref name="dtype"/> ("F32", "BF16", ...).</summary>
    public static string ToHeaderString(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL => "BOOL",
        SafetensorsDType.U8 => "U8",
        SafetensorsDType.I8 => "I8",
        SafetensorsDType.I16 => "I16",
        SafetensorsDType.I32 => "I32",
        SafetensorsDType.I64 => "I64",
        SafetensorsDType.F16 => "F16",
        SafetensorsDType.BF16 => "BF16",
        SafetensorsDType.F32 => "F32",
        SafetensorsDType.F64 => "F64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>Parses a header dtype string; case-sensitive, as the format is.</summary>
    public static bool TryParseHeaderString(string text, out SafetensorsDType dtype)
    {
        // Enum.TryParse would also accept "1", " F32" or "f32" (ignoreCase aside): match exactly.
        foreach (var candidate in Enum.GetValues<SafetensorsDType>())
        {
            if (candidate.ToHeaderString() == text)
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>Bytes per element (BOOL is one byte per element, as in torch).</summary>
    public static int ElementSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 => 1,
        SafetensorsDType.I16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.I64 or SafetensorsDType.F64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>The torch scalar type that holds <paramref name="dtype"/> bit for bit.</summary>
    public static torch.ScalarType ToScalarType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL => torch.ScalarType.Bool,
        SafetensorsDType.U8 => torch.ScalarType.Byte,
        SafetensorsDType.I8 => torch.ScalarType.Int8,
        SafetensorsDType.I16 => torch.ScalarType.Int16,
        SafetensorsDType.I32 => torch.ScalarType.Int32,
        SafetensorsDType.I64 => torch.ScalarType.Int64,
        SafetensorsDType.F16 => torch.ScalarType.Float16,
        SafetensorsDType.BF16 => torch.ScalarType.BFloat16,
        SafetensorsDType.F32 => torch.ScalarType.Float32,
        SafetensorsDType.F64 => torch.ScalarType.Float64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>The safetensors dtype of a torch scalar type, or false (complex types, ...).</summary>
    public static bool TryFromScalarType(torch.ScalarType type, out SafetensorsDType dtype)
    {
        switch (type)
        {
            case torch.ScalarType.Bool: dtype = SafetensorsDType.BOOL; return true;
            case torch.ScalarType.Byte: dtype = SafetensorsDType.U8; return true;
            case torch.ScalarType.Int8: dtype = SafetensorsDType.I8; return true;
            case torch.ScalarType.Int16: dtype = SafetensorsDType.I16; return true;
            case torch.ScalarType.Int32: dtype = SafetensorsDType.I32; return true;
            case torch.ScalarType.Int64: dtype = SafetensorsDType.I64; return true;
            case torch.ScalarType.Float16: dtype = SafetensorsDType.F16; return true;
            case torch.ScalarType.BFloat16: dtype = SafetensorsDType.BF16; return true;
            case torch.ScalarType.Float32: dtype = SafetensorsDType.F32; return true;
            case torch.ScalarType.Float64: dtype = SafetensorsDType.F64; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The safetensors dtype of a torch scalar type; throws naming the type if there is none.</summary>
    public static SafetensorsDType FromScalarType(torch.ScalarType type) =>
        TryFromScalarType(type, out var dtype)
            ? dtype
            : throw new ArgumentException($"torch type {type} has no safetensors dtype", nameof(type));
}
