namespace Jetpack.Model.Data;

/// <summary>
/// torchvision's <c>ToTensor</c> + <c>Normalize</c> on 8-bit HWC pixels, written as float32 CHW:
/// (v / 255 − mean_c) / std_c. The float32 operations are the ones torch performs (divide, subtract,
/// divide, each rounded once), taken from a 256-entry table per channel made with them, so the values are the
/// torch path's to the bit at the cost of one lookup per value, and no tensor per image. Optionally mirrors
/// left ↔ right on the way (the horizontal flip, fused). Immutable and thread-safe.
/// </summary>
public sealed class PixelNormalizer
{
    private readonly float[] _table;     // [c · 256]

    public PixelNormalizer(IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count is not (1 or 3) || std.Count != mean.Count)
            throw new ArgumentException($"mean and std need 1 or 3 matching entries, got {mean.Count} and {std.Count}", nameof(mean));
        Channels = mean.Count;
        _table = new float[Channels * 256];
        for (int c = 0; c < Channels; c++)
            for (int v = 0; v < 256; v++)
                _table[c * 256 + v] = (v / 255f - mean[c]) / std[c];
    }

    public int Channels { get; }

    /// <summary>The normalised value of level <paramref name="value"/> in channel <paramref name="channel"/>.</summary>
    public float Value(int channel, byte value) => _table[channel * 256 + value];

    /// <summary>
    /// Writes <paramref name="pixels"/> (HWC, <see cref="Channels"/> bytes a pixel) to <paramref name="destination"/>
    /// as [c, h, w] floats; <paramref name="flip"/> mirrors each row.
    /// </summary>
    public unsafe void Write(ReadOnlySpan<byte> pixels, int width, int height, bool flip, Span<float> destination)
    {
        int plane = width * height, ch = Channels;
        if (pixels.Length < plane * ch) throw new ArgumentException($"{width}x{height}x{ch} needs {plane * ch} bytes, got {pixels.Length}", nameof(pixels));
        if (destination.Length < plane * ch) throw new ArgumentException($"the destination holds {destination.Length} floats, {plane * ch} needed", nameof(destination));
        fixed (byte* src = pixels)
        fixed (float* dst = destination)
        fixed (float* table = _table)
        {
            for (int y = 0; y < height; y++)
            {
                byte* row = src + y * width * ch;
                int start = y * width + (flip ? width - 1 : 0), step = flip ? -1 : 1;
                if (ch == 3)
                {
                    float* r = dst + start, g = r + plane, b = g + plane;
                    for (int x = 0; x < width; x++, row += 3)
                    {
                        int o = x * step;
                        r[o] = table[row[0]];
                        g[o] = table[256 + row[1]];
                        b[o] = table[512 + row[2]];
                    }
                }
                else
                {
                    float* p = dst + start;
                    for (int x = 0; x < width; x++) p[x * step] = table[row[x]];
                }
            }
        }
    }
}
