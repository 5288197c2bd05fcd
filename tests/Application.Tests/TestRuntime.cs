using System.Runtime.CompilerServices;

namespace Jetpack.Application.Tests;

static class TestRuntime
{
    /// <summary>The same torch runtime settings as the executables, before any test touches torch.</summary>
    [ModuleInitializer]
    internal static void Configure() => Jetpack.Model.Torch.TorchRuntime.Configure();
}
