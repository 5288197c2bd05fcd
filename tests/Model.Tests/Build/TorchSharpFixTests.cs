using System.Diagnostics;
using System.Security.Cryptography;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Build;

/// <summary>
/// The build-time repair of libLibTorchSharp.so (build/torchsharp-fix): it patches a pristine copy
/// from the NuGet cache, a second run changes nothing, and the result needs the shim, not GLIBCXX_3.4.32.
/// (TorchLoadsTests proves the repaired library in this test's own output actually runs.)
/// </summary>
public class TorchSharpFixTests
{
    static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    static string PristineLibrary()
    {
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var so = Path.Combine(cache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(so), $"pristine TorchSharp library not found at {so}");
        return so;
    }

    static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    static string Hash(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    static bool SystemHasGlibcxx332() =>
        File.ReadAllText("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", System.Text.Encoding.Latin1).Contains("GLIBCXX_3.4.32");

    [Fact]
    public void RepairsOnceAndIsIdempotent()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var dir = new TempDirectory();
        var so = Path.Combine(dir.FullPath, "libLibTorchSharp.so");
        File.Copy(PristineLibrary(), so);
        string pristine = Hash(so);
        var script = RepoFile("build/torchsharp-fix/fix-libtorchsharp.sh");

        var first = Run("bash", script, dir.FullPath);
        Assert.True(first.Code == 0, first.Output);
        if (SystemHasGlibcxx332())
        {
            Assert.Equal(pristine, Hash(so));              // nothing to repair on a new libstdc++
            return;
        }
        Assert.Contains("repaired", first.Output);
        Assert.NotEqual(pristine, Hash(so));
        Assert.True(File.Exists(Path.Combine(dir.FullPath, "libiosinit.so")));
        string repaired = Hash(so);

        var second = Run("bash", script, dir.FullPath);
        Assert.True(second.Code == 0, second.Output);
        Assert.DoesNotContain("repaired", second.Output);
        Assert.Equal(repaired, Hash(so));

        var needed = Run("patchelf", "--print-needed", so);
        Assert.Contains("libiosinit.so", needed.Output);
    }
}
