using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Jetpack.Model.Data;

/// <summary>
/// PIL's <c>Image.resize(BICUBIC)</c> on 8-bit pixels, in C#, with PIL's own arithmetic, so the result is
/// PIL's to the bit (torchvision's Resize and RandomResizedCrop on PIL images call it).
/// <para>
/// The algorithm (Pillow's Resample.c, from its formulas): per axis, output pixel i of a resize from n to m
/// samples the input around its centre c = (i + ½)·n/m with the a = −½ (Catmull-Rom) cubic
/// W(x) = (a+2)|x|³ − (a+3)|x|² + 1 for |x| &lt; 1, a|x|³ − 5a|x|² + 8a|x| − 4a for |x| &lt; 2, stretched by
/// f = max(n/m, 1) when shrinking (an antialiasing low-pass): taps j ∈ [⌊c − 2f + ½⌋, ⌊c + 2f + ½⌋) clipped to the
/// image, weights W((j − c + ½)/f) normalised to sum 1, then turned into fixed point with 22 fraction bits
/// (rounded half away from zero). A pass sums pixel × weight in 32-bit integers from ½ (2²¹), shifts right by
/// 22 and clips to 0..255: horizontal pass first (8-bit intermediate), then vertical; a pass whose size does not
/// change is skipped. The support is clipped to the <i>box</i> being resized, as after PIL's <c>crop</c>.
/// </para>
/// <para>
/// Only the requested output window is computed (a centre crop costs its own pixels, not the whole resized
/// image), from rows and columns of the source read in place: an RGBA decode (4 bytes a pixel) is read
/// without a copy to RGB. The vertical pass runs 16 values at a time with AVX2; the horizontal one widens an RGBA
/// pixel to four int lanes and multiplies four pixels at a time with AVX-512, two with AVX2, one with SSE4.1 (scalar
/// elsewhere and for RGB or gray sources; every path gives the same bytes, tested with each instruction set turned
/// off). Pure and thread-safe.
/// </para>
/// </summary>
public static class BicubicResize
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const int Half = 1 << (PrecisionBits - 1);

    /// <summary>A rectangle of pixels: left, top, width, height.</summary>
    public readonly record struct Box(int Left, int Top, int Width, int Height)
    {
        public static Box Whole(int width, int height) => new(0, 0, width, height);
    }

    /// <summary>
    /// Resizes <paramref name="box"/> of an image to <paramref name="outWidth"/> × <paramref name="outHeight"/> and writes
    /// the <paramref name="window"/> of the result (HWC, <paramref name="channels"/> bytes a pixel: 1 with gray, else 3) to
    /// <paramref name="destination"/>. <paramref name="source"/> holds rows of <paramref name="sourceWidth"/> pixels of
    /// <paramref name="pixelBytes"/> bytes (1 = gray, 3 = RGB, 4 = RGBA whose alpha is ignored) whose first is the image's
    /// pixel (<paramref name="originX"/>, <paramref name="originY"/>): the whole image, or any part of it holding the
    /// pixels the window needs (<see cref="Needed"/>).
    /// </summary>
    public static void Resize(ReadOnlySpan<byte> source, int sourceWidth, int pixelBytes, int channels, Box box,
        int outWidth, int outHeight, Box window, Span<byte> destination, int originX = 0, int originY = 0)
    {
        if (!(pixelBytes == 1 && channels == 1 || pixelBytes is 3 or 4 && channels == 3))
            throw new ArgumentException($"pixels of {pixelBytes} byte(s) cannot give {channels} channel(s)", nameof(channels));
        if (box.Width < 1 || box.Height < 1 || box.Left < 0 || box.Top < 0)
            throw new ArgumentOutOfRangeException(nameof(box), $"box {box} is empty or starts outside the image");
        if (outWidth < 1 || outHeight < 1 || window.Width < 1 || window.Height < 1 || window.Left < 0 || window.Top < 0
            || window.Left + window.Width > outWidth || window.Top + window.Height > outHeight)
            throw new ArgumentOutOfRangeException(nameof(window), $"window {window} is outside the {outWidth}x{outHeight} output");
        if (destination.Length < window.Width * window.Height * channels)
            throw new ArgumentException($"the destination holds {destination.Length} bytes, the window needs {window.Width * window.Height * channels}", nameof(destination));

        bool horizontal = box.Width != outWidth, vertical = box.Height != outHeight;
        var columns = horizontal ? Axis.Of(box.Width, outWidth, window.Left, window.Width) : null;
        var rows = vertical ? Axis.Of(box.Height, outHeight, window.Top, window.Height) : null;
        // the box's columns and rows that are read (the window's own when a pass is skipped)
        var (firstColumn, lastColumn) = columns is null ? (window.Left, window.Left + window.Width) : (columns.Start[0], columns.Start[^1] + columns.Count[^1]);
        var (firstRow, lastRow) = rows is null ? (window.Top, window.Top + window.Height) : (rows.Start[0], rows.Start[^1] + rows.Count[^1]);
        int sourceStride = sourceWidth * pixelBytes;
        if (box.Left + firstColumn < originX || box.Left + lastColumn > originX + sourceWidth
            || box.Top + firstRow < originY || (long)(box.Top + lastRow - originY) * sourceStride > source.Length)
            throw new ArgumentOutOfRangeException(nameof(box),
                $"box {box} needs image columns {box.Left + firstColumn}..{box.Left + lastColumn - 1} and rows {box.Top + firstRow}..{box.Top + lastRow - 1}; " +
                $"the source holds {sourceWidth} columns from {originX} and {source.Length / Math.Max(1, sourceStride)} rows from {originY}");
        int rowBytes = window.Width * channels;

        // Horizontal pass (or the plain column copy) into the 8-bit intermediate: the rows the vertical pass needs.
        byte[]? rented = vertical ? ArrayPool<byte>.Shared.Rent((lastRow - firstRow) * rowBytes) : null;
        try
        {
            Span<byte> between = vertical ? rented : destination;
            for (int r = firstRow; r < lastRow; r++)
            {
                var sourceRow = source.Slice((box.Top + r - originY) * sourceStride + (box.Left + firstColumn - originX) * pixelBytes,
                    (lastColumn - firstColumn) * pixelBytes);                  // box columns firstColumn … lastColumn − 1
                var targetRow = between.Slice((r - firstRow) * rowBytes, rowBytes);
                if (columns is not null) HorizontalRow(sourceRow, firstColumn, pixelBytes, channels, columns, targetRow);
                else CopyRow(sourceRow, pixelBytes, channels, targetRow);
            }
            if (rows is not null)
                for (int i = 0; i < window.Height; i++)
                    VerticalRow(between, rowBytes, rows.Start[i] - firstRow, rows.Weights.AsSpan(i * rows.Taps, rows.Count[i]),
                        destination.Slice(i * rowBytes, rowBytes));
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The input pixels [Start, End) that outputs [first, first + length) of a resize from <paramref name="inSize"/> to
    /// <paramref name="outSize"/> read: what a decoder must provide for that part of the result.
    /// </summary>
    public static (int Start, int End) Needed(int inSize, int outSize, int first, int length)
    {
        if (inSize == outSize) return (first, first + length);
        var (start, _) = Axis.Reads(inSize, outSize, first);
        var (last, count) = Axis.Reads(inSize, outSize, first + length - 1);
        return (start, last + count);
    }

    /// <summary>The whole of <paramref name="image"/> resized (PIL <c>resize</c>), or its <paramref name="box"/> (PIL <c>crop</c> then <c>resize</c>).</summary>
    public static ImagePixels Resize(ImagePixels image, int width, int height, Box? box = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var output = new byte[width * height * image.Channels];
        Resize(image.Data, image.Width, image.Channels, image.Channels, box ?? Box.Whole(image.Width, image.Height),
            width, height, Box.Whole(width, height), output);
        return new ImagePixels(output, width, height, image.Channels);
    }

    /// <summary>
    /// One axis of a resize from <c>inSize</c> to <c>outSize</c>, for outputs [first, first + length): output k's taps are
    /// input pixels Start[k] … Start[k] + Count[k] − 1 with the fixed-point weights Weights[k·Taps …].
    /// </summary>
    internal sealed class Axis
    {
        public required int[] Start { get; init; }
        public required int[] Count { get; init; }
        public required int[] Weights { get; init; }
        public required int Taps { get; init; }

        /// <summary>Each weight repeated four times (a pixel's four lanes), made on first use: the AVX2/AVX-512 horizontal pass's operand.</summary>
        public int[] WeightsByFour => _weightsByFour ??= Repeat4(Weights);
        private int[]? _weightsByFour;

        private static int[] Repeat4(int[] weights)
        {
            var four = new int[weights.Length * 4];
            for (int i = 0; i < weights.Length; i++) four.AsSpan(4 * i, 4).Fill(weights[i]);
            return four;
        }

        public static Axis Of(int inSize, int outSize, int first, int length)
        {
            double scale = (double)inSize / outSize;
            double stretch = Math.Max(scale, 1.0);
            double support = 2.0 * stretch;                                    // the cubic's support is 2
            double inverse = 1.0 / stretch;                                    // multiplied, not divided, as PIL does (the same doubles)
            int taps = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[length];
            var count = new int[length];
            var weights = new int[length * taps];
            Span<double> w = stackalloc double[taps];
            for (int k = 0; k < length; k++)
            {
                double centre = (first + k + 0.5) * scale;
                var (lo, n) = Bounds(centre, support, inSize);
                double sum = 0;
                for (int j = 0; j < n; j++)
                {
                    w[j] = Cubic((j + lo - centre + 0.5) * inverse);
                    sum += w[j];
                }
                for (int j = 0; j < n; j++)
                {
                    double v = sum != 0 ? w[j] / sum : w[j];
                    weights[k * taps + j] = (int)(v < 0 ? -0.5 + v * (1 << PrecisionBits) : 0.5 + v * (1 << PrecisionBits));
                }
                start[k] = lo;
                count[k] = n;
            }
            return new Axis { Start = start, Count = count, Weights = weights, Taps = taps };
        }

        /// <summary>The first input pixel and the count output <paramref name="k"/> reads.</summary>
        public static (int Start, int Count) Reads(int inSize, int outSize, int k)
        {
            double scale = (double)inSize / outSize;
            return Bounds((k + 0.5) * scale, 2.0 * Math.Max(scale, 1.0), inSize);
        }

        private static (int Start, int Count) Bounds(double centre, double support, int inSize)
        {
            int lo = Math.Max((int)(centre - support + 0.5), 0);
            return (lo, Math.Min((int)(centre + support + 0.5), inSize) - lo);
        }

        // Keys' cubic convolution kernel with a = −0.5.
        private static double Cubic(double x)
        {
            const double a = -0.5;
            if (x < 0) x = -x;
            if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
            if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
            return 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clip(int sum) => (byte)Math.Clamp(sum >> PrecisionBits, 0, 255);

    /// <summary>One row (box columns <paramref name="firstColumn"/> on) through the horizontal weights.</summary>
    private static unsafe void HorizontalRow(ReadOnlySpan<byte> row, int firstColumn, int pixelBytes, int channels, Axis columns, Span<byte> target)
    {
        int length = columns.Start.Length;
        fixed (byte* src = row)
        fixed (byte* dst = target)
        fixed (int* weights = columns.Weights)
        {
            if (pixelBytes == 4 && Avx2.IsSupported)
            {
                // A pixel's four bytes widened to four int lanes: R, G, B (and the ignored alpha), two or four pixels (taps)
                // per multiply-add against each weight repeated four times, the lane groups summed at the end.
                fixed (int* weights4 = columns.WeightsByFour)
                    for (int k = 0; k < length; k++)
                    {
                        byte* p = src + (columns.Start[k] - firstColumn) * 4;
                        int* w = weights + k * columns.Taps, w4 = weights4 + k * columns.Taps * 4;
                        int n = columns.Count[k], j = 0;
                        var sum = Vector128.Create(Half);
                        if (Avx512F.IsSupported && n >= 4)
                        {
                            var sum4 = Vector512<int>.Zero;
                            for (; j + 4 <= n; j += 4)
                                sum4 += Avx512F.ConvertToVector512Int32(Vector128.Load(p + 4 * j)) * Vector512.Load(w4 + 4 * j);
                            var half = sum4.GetLower() + sum4.GetUpper();
                            sum += half.GetLower() + half.GetUpper();
                        }
                        if (j + 2 <= n)
                        {
                            var sum2 = Vector256<int>.Zero;
                            for (; j + 2 <= n; j += 2)
                                sum2 += Avx2.ConvertToVector256Int32(p + 4 * j) * Vector256.Load(w4 + 4 * j);
                            sum += sum2.GetLower() + sum2.GetUpper();
                        }
                        for (; j < n; j++)
                            sum += Sse41.ConvertToVector128Int32(p + 4 * j) * Vector128.Create(w[j]);
                        Store3(sum, dst + 3 * k, last: k == length - 1);
                    }
                return;
            }
            if (pixelBytes == 4 && Sse41.IsSupported)
            {
                for (int k = 0; k < length; k++)
                {
                    byte* p = src + (columns.Start[k] - firstColumn) * 4;
                    int* w = weights + k * columns.Taps;
                    var sum = Vector128.Create(Half);
                    for (int j = 0, n = columns.Count[k]; j < n; j++)
                        sum += Sse41.ConvertToVector128Int32(p + 4 * j) * Vector128.Create(w[j]);
                    Store3(sum, dst + 3 * k, last: k == length - 1);
                }
                return;
            }
            for (int k = 0; k < length; k++)
            {
                byte* p = src + (columns.Start[k] - firstColumn) * pixelBytes;
                int* w = weights + k * columns.Taps;
                int n = columns.Count[k];
                for (int c = 0; c < channels; c++)
                {
                    int sum = Half;
                    for (int j = 0; j < n; j++) sum += p[j * pixelBytes + c] * w[j];
                    dst[k * channels + c] = Clip(sum);
                }
            }
        }
    }

    // R, G, B of a pixel's sums to 8 bits: one 4-byte store whose 4th byte the next pixel overwrites; the row's last pixel byte by byte.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store3(Vector128<int> sum, byte* target, bool last)
    {
        sum = Vector128.Min(Vector128.Max(Vector128.ShiftRightArithmetic(sum, PrecisionBits), Vector128<int>.Zero), Vector128.Create(255));
        uint rgba = Vector128.Narrow(Vector128.Narrow(sum, sum), Vector128<short>.Zero).AsUInt32().ToScalar();   // low 4 bytes: R, G, B, A
        if (!last) *(uint*)target = rgba;
        else
        {
            target[0] = (byte)rgba;
            target[1] = (byte)(rgba >> 8);
            target[2] = (byte)(rgba >> 16);
        }
    }

    private static void CopyRow(ReadOnlySpan<byte> row, int pixelBytes, int channels, Span<byte> target)
    {
        if (pixelBytes == channels)
        {
            row.CopyTo(target);
            return;
        }
        for (int k = 0, n = row.Length / pixelBytes; k < n; k++)
            for (int c = 0; c < channels; c++) target[k * channels + c] = row[k * pixelBytes + c];
    }

    /// <summary>Output row = Σ_j weight_j × intermediate row (first + j), every value of the row at once.</summary>
    private static unsafe void VerticalRow(ReadOnlySpan<byte> between, int rowBytes, int first, ReadOnlySpan<int> weights, Span<byte> target)
    {
        fixed (byte* src = between)
        fixed (byte* dst = target)
        fixed (int* w = weights)
        {
            byte* top = src + first * rowBytes;
            int n = weights.Length, i = 0;
            if (Avx2.IsSupported)
            {
                var zero = Vector256<int>.Zero;
                var max = Vector256.Create(255);
                for (; i + 16 <= rowBytes; i += 16)
                {
                    var lo = Vector256.Create(Half);
                    var hi = lo;
                    for (int j = 0; j < n; j++)
                    {
                        var wj = Vector256.Create(w[j]);
                        byte* p = top + j * rowBytes + i;
                        lo += Avx2.ConvertToVector256Int32(p) * wj;
                        hi += Avx2.ConvertToVector256Int32(p + 8) * wj;
                    }
                    lo = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(lo, PrecisionBits), zero), max);
                    hi = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(hi, PrecisionBits), zero), max);
                    var shorts = Vector256.Narrow(lo, hi);                              // 16 values, in order
                    Vector128.Narrow(shorts.GetLower(), shorts.GetUpper()).AsByte().Store(dst + i);
                }
            }
            for (; i < rowBytes; i++)
            {
                int sum = Half;
                for (int j = 0; j < n; j++) sum += top[j * rowBytes + i] * w[j];
                dst[i] = Clip(sum);
            }
        }
    }
}
