using static TorchSharp.torch;

namespace Jetpack.Model.Distributed;

/// <summary>The checks every exchange makes before a piece touches a model (DESIGN.md "Trust boundaries").</summary>
public static class ExchangeChecks
{
    public static void Shape(Tensor piece, long[] expected, int from, int to, ExchangeTag tag)
    {
        if (!piece.shape.SequenceEqual(expected))
            throw new ExchangeFailedException(
                $"{tag}: the piece from rank {from} to rank {to} is [{string.Join(", ", piece.shape)}], expected [{string.Join(", ", expected)}]");
    }
}
