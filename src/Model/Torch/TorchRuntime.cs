using System.Runtime.InteropServices;

namespace Jetpack.Model.Torch;

/// <summary>
/// Process-wide settings of the native torch runtime. Call <see cref="Configure"/> first thing in
/// every entry point, before any tensor exists.
/// </summary>
public static partial class TorchRuntime
{
    private static int configured;

    /// <summary>
    /// Turns on libtorch's transparent-huge-page allocation (THP_MEM_ALLOC_ENABLE) unless the user
    /// set it. Why: an MoE step frees and re-allocates full-size gradient and activation buffers
    /// (58 MB for one layer's core fc1 gradient), above glibc's 32 MB mmap ceiling, so every step
    /// page-faults them in again 4 KiB at a time. With 2 MiB pages the V-JetMoE-T step went from
    /// 2.6 s to 1.5 s on 2 cores. libtorch reads the variable once, at its first allocation, from
    /// the native environment — .NET's Environment.SetEnvironmentVariable does not reach it, so libc's
    /// setenv is called directly.
    /// </summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref configured, 1) == 1 || !OperatingSystem.IsLinux()) return;
        try
        {
            _ = setenv("THP_MEM_ALLOC_ENABLE", "1", 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // not glibc: keep the default allocator
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
