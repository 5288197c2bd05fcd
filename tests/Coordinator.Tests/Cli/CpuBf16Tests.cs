using Jetpack.Cli.Commands;
using Jetpack.Cli.Study;
using Jetpack.Model.Training;
using static TorchSharp.torch;
using Jetpack.Cli.Runs;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>The bf16 warning reads the CPU flags: emulated bf16 is several times slower than fp32.</summary>
public class CpuBf16Tests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("jetpack-cpuinfo-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string CpuInfo(string flags)
    {
        var path = Path.Combine(dir, Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, $"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\nbogomips\t: 4000\n");
        return path;
    }

    [Fact]
    public void TheFlagsDecideAndOnlyABf16RunOnTheCpuIsWarned()
    {
        string avx2 = CpuInfo("fpu sse2 avx2 fma avx512f"), zen4 = CpuInfo("fpu avx2 avx512f avx512_bf16"), amx = CpuInfo("fpu avx2 amx_bf16 amx_tile");
        Assert.Equal(false, CpuBf16.HasHardwareBf16(avx2));
        Assert.Equal(true, CpuBf16.HasHardwareBf16(zen4));
        Assert.Equal(true, CpuBf16.HasHardwareBf16(amx));
        Assert.Null(CpuBf16.HasHardwareBf16(Path.Combine(dir, "missing")));

        Assert.Contains("without avx512_bf16", CpuBf16.Warning(Precision.Bf16, CPU, avx2));
        Assert.Null(CpuBf16.Warning(Precision.Fp32, CPU, avx2));
        Assert.Null(CpuBf16.Warning(Precision.Bf16, CPU, zen4));
        Assert.Null(CpuBf16.Warning(Precision.Bf16, new Device("cuda"), avx2));      // a GPU's bf16 is not the CPU's business
    }

    [Fact]
    public void TheStudyLeavesOutEmulatedBf16UnlessAsked()
    {
        string avx2 = CpuInfo("fpu sse2 avx2 fma"), zen4 = CpuInfo("fpu avx2 avx512f avx512_bf16");
        Assert.Contains("--bf16 on", StudyCommand.SkipBf16("auto", explicitlyAsked: false, CPU, avx2));
        Assert.Null(StudyCommand.SkipBf16("auto", explicitlyAsked: false, CPU, zen4));
        Assert.Null(StudyCommand.SkipBf16("auto", explicitlyAsked: false, new Device("cuda"), avx2));
        Assert.Null(StudyCommand.SkipBf16("auto", explicitlyAsked: true, CPU, avx2));          // --only jetpack_bf16
        Assert.Null(StudyCommand.SkipBf16("on", explicitlyAsked: false, CPU, avx2));
        Assert.NotNull(StudyCommand.SkipBf16("off", explicitlyAsked: false, CPU, zen4));
        var bad = Assert.Throws<ArgumentException>(() => StudyCommand.SkipBf16("yes", explicitlyAsked: false, CPU, zen4));
        Assert.Contains("--bf16", bad.Message);
    }
}
