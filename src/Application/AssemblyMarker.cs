namespace Jetpack.Application;

/// <summary>The application layer's assembly (for tests and reflection).</summary>
public static class ApplicationAssembly
{
    public static System.Reflection.Assembly Assembly => typeof(ApplicationAssembly).Assembly;
}
