namespace Jetpack.Model.Checkpoints;

/// <summary>
/// One tensor's header entry. <see cref="Begin"/> and <see cref="End"/> are byte offsets relative
/// to the start of the data section (the first byte after the header), End exclusive.
/// </summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Bytes of tensor data: End − Begin (validated on open to equal product(Shape) × element size).</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements: the product of <see cref="Shape"/> (1 for a 0-d tensor).</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var dim in Shape)
                count *= dim;
            return count;
        }
    }

    public override string ToString() =>
        $"{Name}: {DType.ToHeaderString()} [{string.Join(", ", Shape)}] bytes [{Begin}, {End})";
}
