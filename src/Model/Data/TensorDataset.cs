using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Data;

/// <summary>
/// Images already in memory as a tensor [n, c, h, w] (any real dtype, returned as float32, no
/// transform) with integer labels [n]. Holds its own handle on the images' storage (an alias, no
/// copy), so the caller may dispose theirs; dispose the dataset to release it.
/// </summary>
public sealed class TensorDataset : IImageDataset, IDisposable
{
    private readonly Tensor _images;    // [n, c, h, w]
    private readonly long[] _labels;
    private readonly string[] _classNames;

    /// <param name="images">[n, c, h, w].</param>
    /// <param name="labels">[n] integer labels in 0..numClasses-1 (copied).</param>
    /// <param name="numClasses">Number of classes; names default to "0".."k-1".</param>
    /// <param name="classNames">Optional names, exactly <paramref name="numClasses"/> of them.</param>
    public TensorDataset(Tensor images, Tensor labels, int numClasses, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.dim() != 4)
            throw new ArgumentException($"images must be [n, c, h, w], got [{string.Join(", ", images.shape)}]", nameof(images));
        if (labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException(
                $"labels must be [{images.shape[0]}] to match images [{string.Join(", ", images.shape)}], got [{string.Join(", ", labels.shape)}]",
                nameof(labels));
        if (labels.is_floating_point() || labels.is_complex() || labels.dtype == ScalarType.Bool)
            throw new ArgumentException($"labels must be an integer tensor, got {labels.dtype}", nameof(labels));
        if (images.is_complex() || images.dtype == ScalarType.Bool)
            throw new ArgumentException($"images must be real numbers, got {images.dtype}", nameof(images));
        if (numClasses < 1)
            throw new ArgumentOutOfRangeException(nameof(numClasses), $"numClasses must be positive, got {numClasses}");
        if (classNames is not null && classNames.Count != numClasses)
            throw new ArgumentException($"{classNames.Count} class names for {numClasses} classes", nameof(classNames));

        using (var cpu = labels.to(ScalarType.Int64).cpu())
            _labels = cpu.data<long>().ToArray();
        for (int i = 0; i < _labels.Length; i++)
        {
            if (_labels[i] < 0 || _labels[i] >= numClasses)
                throw new ArgumentException($"label {_labels[i]} at index {i} is outside 0..{numClasses - 1}", nameof(labels));
        }
        _classNames = classNames is null ? [.. Enumerable.Range(0, numClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))] : [.. classNames];
        _images = images.alias().DetachFromDisposeScope();
    }

    public int Count => _labels.Length;
    public int NumClasses => _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return (int)_labels[index];
    }

    /// <summary>A float32 copy of image <paramref name="index"/>, [c, h, w].</summary>
    public (Tensor Image, int Label) Get(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        using var row = _images[index];                                           // [c, h, w], a view
        return (row.to(ScalarType.Float32, copy: true), (int)_labels[index]);
    }

    /// <summary>One gather (index_select) of the rows, then a float32 conversion.</summary>
    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0)
            throw new ArgumentException("a batch needs at least one index", nameof(indices));
        var rows = new long[indices.Count];
        var labels = new long[indices.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            DatasetBatching.CheckIndex(indices[i], Count);
            rows[i] = indices[i];
            labels[i] = _labels[indices[i]];
        }
        using var scope = NewDisposeScope();
        var picked = _images.index_select(0, tensor(rows, device: _images.device)); // [b, c, h, w]
        var images = picked.to(ScalarType.Float32);                                 // [b, c, h, w]
        return (images.MoveToOuterDisposeScope(), tensor(labels).MoveToOuterDisposeScope());
    }

    public void Dispose() => _images.Dispose();
}
