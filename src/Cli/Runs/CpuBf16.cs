using Jetpack.Model.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Jetpack.Cli.Runs;

/// <summary>
/// Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX). Without it libtorch emulates
/// bf16 and the bf16 policy is slower than fp32, not faster: on an AVX2-only EPYC (2026-12-04) the
/// study's bf16 run took 6× the fp32 run's step time, where a CPU with avx512_bf16 gave 0.58×.
/// </summary>
public static class CpuBf16
{
    /// <summary>True or false from the CPU flags in <paramref name="cpuinfo"/>; null where that file does not exist (not Linux).</summary>
    public static bool? HasHardwareBf16(string cpuinfo = "/proc/cpuinfo")
    {
        if (!File.Exists(cpuinfo)) return null;
        var flags = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
        if (flags is null) return null;
        var set = flags[(flags.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return set.Contains("avx512_bf16") || set.Contains("amx_bf16");
    }

    /// <summary>The warning to print before a bf16 run on a CPU that emulates bf16, else null.</summary>
    public static string? Warning(Precision precision, Device device, string cpuinfo = "/proc/cpuinfo") =>
        precision == Precision.Bf16 && device.type == TorchSharp.DeviceType.CPU && HasHardwareBf16(cpuinfo) == false
            ? "precision bf16 on a CPU without avx512_bf16 or amx_bf16: libtorch emulates bf16 here, so steps are several times " +
              "slower than fp32 (6× measured on an AVX2-only CPU); use precision fp32 on this machine"
            : null;

    public static void WarnIfEmulated(Precision precision, Device device)
    {
        if (Warning(precision, device) is { } w) AnsiConsole.MarkupLine($"[yellow]warning:[/] {Markup.Escape(w)}");
    }
}
