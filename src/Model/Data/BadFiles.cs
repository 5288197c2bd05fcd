using System.Collections.Concurrent;

namespace Jetpack.Model.Data;

/// <summary>Too many files of a dataset failed to decode: the message names them.</summary>
public sealed class TooManyBadFilesException(string message) : IOException(message);

/// <summary>
/// The undecodable files (truncated, empty, corrupt) met while reading a dataset. A 1 TB run must not
/// die on one bad file and must not hide many: each is logged by path once and counted, and reading
/// goes on with a substitute sample; once more than <see cref="MaxFraction"/> of the dataset's
/// <see cref="DatasetCount"/> files are bad, <see cref="Report"/> throws
/// <see cref="TooManyBadFilesException"/> naming them (data.max_bad_fraction, default 0.001: ImageNet's
/// 1.28 M train images may hold up to 1,281). Thread-safe.
/// </summary>
public sealed class BadFiles(int datasetCount, double maxFraction = BadFiles.DefaultMaxFraction, Action<string>? log = null)
{
    public const double DefaultMaxFraction = 0.001;

    private readonly ConcurrentDictionary<string, string> _files = new();

    public int DatasetCount { get; } = datasetCount;
    public double MaxFraction { get; } = maxFraction;
    /// <summary>The largest number of bad files tolerated: floor(fraction × count).</summary>
    public int Allowed => (int)Math.Floor(MaxFraction * DatasetCount);
    public int Count => _files.Count;
    public IReadOnlyList<string> Paths => [.. _files.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Records a bad file (once per path), logs it, and throws when the bad files exceed the allowed fraction.</summary>
    public void Report(string path, string why)
    {
        if (_files.TryAdd(path, why)) log?.Invoke($"skipped undecodable image {why}");
        if (_files.Count > Allowed)
        {
            var listed = _files.OrderBy(f => f.Key, StringComparer.Ordinal).Take(20).Select(f => f.Value);
            throw new TooManyBadFilesException(
                $"{_files.Count} of {DatasetCount} images are undecodable, more than data.max_bad_fraction {MaxFraction} allows ({Allowed}): " +
                string.Join("; ", listed) + (_files.Count > 20 ? $"; … and {_files.Count - 20} more" : ""));
        }
    }

    /// <summary>
    /// <paramref name="read"/>(index), or, while it throws an undecodable-image error (<see cref="UndecodableImage"/>), the
    /// same for the following indices (wrapping): the substitute is a pure function of the index, so a
    /// resumed or distributed run sees the same samples. Each failure is <see cref="Report"/>ed.
    /// </summary>
    public T Substitute<T>(int index, Func<int, T> read)
    {
        for (int attempt = 0; attempt < DatasetCount; attempt++)
        {
            int j = (int)((index + (long)attempt) % DatasetCount);
            try { return read(j); }
            catch (InvalidDataException e) when (UndecodableImage.PathOf(e) is { } path) { Report(path, e.Message); }
        }
        throw new TooManyBadFilesException($"none of the dataset's {DatasetCount} images decodes");
    }
}
