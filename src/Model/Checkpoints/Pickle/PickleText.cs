using System.Globalization;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// Short, Python-flavoured descriptions of unpickled values for messages and reports. Never
/// recursive: a hostile pickle can build a list that contains itself, and describing it must
/// still terminate.
/// </summary>
internal static class PickleText
{
    private const int MaxStringShown = 60;

    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PickleTuple => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal g => g.FullName,
        PickledStorage => "storage",
        PickledTensor => "tensor",
        _ => value.GetType().Name,
    };

    public static string Describe(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => $"int {l.ToString(CultureInfo.InvariantCulture)}",
        double d => $"float {d.ToString("R", CultureInfo.InvariantCulture)}",
        string s => s.Length <= MaxStringShown ? $"str '{s}'" : $"str '{s[..MaxStringShown]}...' ({s.Length} chars)",
        PickleTuple t => $"tuple ({t.Count} items)",
        List<object?> l => $"list ({l.Count} items)",
        PickleDict d => $"dict ({d.Count} entries)",
        PickleGlobal g => $"global {g.FullName}",
        PickledStorage s => $"storage '{s.Key}' ({s.Numel} x {s.DType})",
        PickledTensor t => t.Describe(),
        _ => TypeName(value),
    };
}
