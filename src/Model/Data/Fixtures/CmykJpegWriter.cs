namespace Jetpack.Model.Data.Fixtures;

/// <summary>
/// Writes a baseline JPEG with four components in Adobe's inverted CMYK convention (APP14
/// "Adobe", transform 0), the form Photoshop writes and ImageNet holds a few dozen of. SkiaSharp
/// cannot encode CMYK, so the test tree's CMYK file is encoded here: the stored values are
/// (R, G, B, 255) read as inverted (C, M, Y, K), which a decoder converts back to the same RGB
/// (R = C'·K'/255 for inverted values), so the decoded image is comparable with the RGB source.
/// <para>
/// ITU-T T.81 baseline: level shift, separable float DCT-II per 8×8 block, one flat quantisation
/// table, zig-zag, DPCM of DC per component, run-length of AC with ZRL/EOB, and canonical Huffman
/// tables of fixed code length (4 bits for the 12 DC categories, 8 bits for the 162 AC symbols:
/// valid, if not optimal, and never the all-ones code). No subsampling; one MCU = one block per component.
/// </para>
/// </summary>
public static class CmykJpegWriter
{
    /// <param name="rgb">width·height·3 bytes, rows top to bottom</param>
    /// <param name="quantizer">the flat quantisation step (1..255): larger is smaller and coarser</param>
    public static byte[] Encode(byte[] rgb, int width, int height, int quantizer = 6)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width is < 1 or > 65535 || height is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(width), $"size {width}x{height} is outside 1..65535");
        if (rgb.Length != width * height * 3) throw new ArgumentException($"{width}x{height} RGB needs {width * height * 3} bytes, got {rgb.Length}", nameof(rgb));
        if (quantizer is < 1 or > 255) throw new ArgumentOutOfRangeException(nameof(quantizer), $"must be in 1..255, got {quantizer}");

        var output = new MemoryStream();
        void Marker(int code) { output.WriteByte(0xFF); output.WriteByte((byte)code); }
        void Segment(int code, byte[] body)
        {
            Marker(code);
            output.WriteByte((byte)((body.Length + 2) >> 8)); output.WriteByte((byte)(body.Length + 2));
            output.Write(body);
        }

        Marker(0xD8);                                                                   // SOI
        Segment(0xEE, [(byte)'A', (byte)'d', (byte)'o', (byte)'b', (byte)'e', 0, 100, 0, 0, 0, 0, 0]);  // APP14: version 100, transform 0 (CMYK as is)
        Segment(0xDB, [0, .. Enumerable.Repeat((byte)quantizer, 64)]);                  // DQT 0, 8-bit, flat
        Segment(0xC0, [8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 4,
                       1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);                 // SOF0: 4 components, 1×1, table 0
        var (dcSymbols, acSymbols) = Symbols();
        Segment(0xC4, [0x00, .. Counts(4, dcSymbols.Length), .. dcSymbols]);            // DHT DC 0
        Segment(0xC4, [0x10, .. Counts(8, acSymbols.Length), .. acSymbols]);            // DHT AC 0
        Segment(0xDA, [4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0]);               // SOS
        var dcCode = Codes(dcSymbols);
        var acCode = Codes(acSymbols);

        var bits = new BitWriter(output);
        var previousDc = new int[4];
        var block = new double[64];
        var coefficients = new double[64];
        for (int by = 0; by < height; by += 8)
        {
            for (int bx = 0; bx < width; bx += 8)
            {
                for (int c = 0; c < 4; c++)
                {
                    for (int y = 0; y < 8; y++)
                        for (int x = 0; x < 8; x++)
                        {
                            int sx = Math.Min(bx + x, width - 1), sy = Math.Min(by + y, height - 1);   // edge replication
                            int value = c == 3 ? 255 : rgb[(sy * width + sx) * 3 + c];
                            block[y * 8 + x] = value - 128;
                        }
                    ForwardDct(block, coefficients);
                    int dc = (int)Math.Round(coefficients[0] / quantizer);
                    int diff = dc - previousDc[c];
                    previousDc[c] = dc;
                    int size = Category(diff);
                    bits.Write(dcCode[size], 4);
                    if (size > 0) bits.Write(Amplitude(diff, size), size);
                    int run = 0;
                    for (int k = 1; k < 64; k++)
                    {
                        int ac = (int)Math.Round(coefficients[ZigZag[k]] / quantizer);
                        if (ac == 0) { run++; continue; }
                        while (run > 15) { bits.Write(acCode[0xF0], 8); run -= 16; }   // ZRL
                        int s = Category(ac);
                        bits.Write(acCode[(run << 4) | s], 8);
                        bits.Write(Amplitude(ac, s), s);
                        run = 0;
                    }
                    if (run > 0) bits.Write(acCode[0x00], 8);                             // EOB
                }
            }
        }
        bits.Flush();
        Marker(0xD9);                                                                   // EOI
        return output.ToArray();
    }

    // DC categories 0..11; AC: EOB, ZRL and every (run 0..15, size 1..10).
    private static (byte[] Dc, byte[] Ac) Symbols()
    {
        var ac = new List<byte> { 0x00, 0xF0 };
        for (int run = 0; run < 16; run++)
            for (int size = 1; size <= 10; size++)
                ac.Add((byte)((run << 4) | size));
        return ([.. Enumerable.Range(0, 12).Select(i => (byte)i)], [.. ac]);
    }

    private static byte[] Counts(int length, int symbols)
    {
        var counts = new byte[16];
        counts[length - 1] = (byte)symbols;
        return counts;
    }

    // Canonical Huffman with one code length: the i-th symbol gets code i.
    private static int[] Codes(byte[] symbols)
    {
        var codes = new int[256];
        for (int i = 0; i < symbols.Length; i++) codes[symbols[i]] = i;
        return codes;
    }

    private static int Category(int v)
    {
        int a = Math.Abs(v), s = 0;
        while (a > 0) { s++; a >>= 1; }
        return s;
    }

    private static int Amplitude(int v, int size) => v >= 0 ? v : v + (1 << size) - 1;

    private static readonly double[] Cosines = BuildCosines();

    private static double[] BuildCosines()
    {
        var table = new double[64];
        for (int u = 0; u < 8; u++)
            for (int x = 0; x < 8; x++)
                table[u * 8 + x] = (u == 0 ? Math.Sqrt(0.5) : 1.0) * Math.Cos((2 * x + 1) * u * Math.PI / 16) / 2;
        return table;
    }

    private static void ForwardDct(double[] block, double[] result)
    {
        Span<double> rows = stackalloc double[64];
        for (int y = 0; y < 8; y++)
            for (int u = 0; u < 8; u++)
            {
                double sum = 0;
                for (int x = 0; x < 8; x++) sum += Cosines[u * 8 + x] * block[y * 8 + x];
                rows[y * 8 + u] = sum;
            }
        for (int v = 0; v < 8; v++)
            for (int u = 0; u < 8; u++)
            {
                double sum = 0;
                for (int y = 0; y < 8; y++) sum += Cosines[v * 8 + y] * rows[y * 8 + u];
                result[v * 8 + u] = sum;
            }
    }

    /// <summary>Natural-order index of the k-th coefficient in zig-zag order.</summary>
    private static readonly int[] ZigZag = BuildZigZag();

    private static int[] BuildZigZag()
    {
        var order = new int[64];
        int k = 0;
        for (int d = 0; d < 15; d++)
        {
            int lo = Math.Max(0, d - 7), hi = Math.Min(d, 7);
            for (int i = lo; i <= hi; i++)
            {
                int row = d % 2 == 0 ? d - i : i;           // even diagonals run up-right, odd down-left
                order[k++] = row * 8 + (d - row);
            }
        }
        return order;
    }

    private sealed class BitWriter(Stream output)
    {
        private int _buffer, _count;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _buffer = (_buffer << 1) | ((value >> i) & 1);
                if (++_count == 8) Emit();
            }
        }

        public void Flush()
        {
            while (_count != 0) Write(1, 1);                // pad with 1-bits
        }

        private void Emit()
        {
            output.WriteByte((byte)_buffer);
            if (_buffer == 0xFF) output.WriteByte(0);       // byte stuffing
            _buffer = 0; _count = 0;
        }
    }
}
