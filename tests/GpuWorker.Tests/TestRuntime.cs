using System.Runtime.CompilerServices;

namespace Jetpack.GpuWorker.Tests;

static class TestRuntime
{
    /// <summary>The executables' torch settings; enough pool threads that blocked ranks never starve the gRPC continuations.</summary>
    [ModuleInitializer]
    internal static void Configure()
    {
        Jetpack.Model.Torch.TorchRuntime.Configure();
        ThreadPool.SetMinThreads(32, 32);
    }
}
