using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>A module that draws random masks or noise (dropout, DropPath, routing noise).</summary>
public interface IStochasticModule
{
    /// <summary>The stream it draws from; null = torch's global generator.</summary>
    Generator? Generator { get; set; }
}

/// <summary>Gives every stochastic module of a model one generator, so a rank's randomness is its
/// own and its state can be saved and restored (exact resume).</summary>
public static class ModelRandomness
{
    public static int Attach(nn.Module model, Generator? generator)
    {
        int n = 0;
        foreach (var (_, module) in model.named_modules())
            if (module is IStochasticModule s) { s.Generator = generator; n++; }
        return n;
    }
}
