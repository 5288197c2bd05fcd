using System.Runtime.InteropServices;

namespace Jetpack.Model.Recycling.Graph;

/// <summary>
/// P/Invoke declarations for Debian's <c>libmetis.so.5</c> (METIS 5.1.0, package libmetis5).
/// <para>
/// Widths: Debian's metis.h (libmetis-dev 5.1.0.dfsg-7) sets IDXTYPEWIDTH 32 and REALTYPEWIDTH 32,
/// so idx_t is int and real_t is float. A library built with 64-bit idx_t would read our int
/// arrays as longs and corrupt memory, so <see cref="CheckIdxWidth"/> verifies the width of the
/// library actually loaded before the first partition: METIS_SetDefaultOptions writes
/// METIS_NOPTIONS (40) idx_t values of −1, i.e. 160 bytes when idx_t is 32 bits and 320 when 64.
/// </para>
/// </summary>
internal static unsafe partial class MetisNative
{
    public const string Library = "libmetis.so.5";

    /// <summary>Length of the options array (METIS_NOPTIONS).</summary>
    public const int NOptions = 40;

    /// <summary>Index of METIS_OPTION_SEED in moptions_et.</summary>
    public const int OptionSeed = 8;

    /// <summary>Index of METIS_OPTION_NUMBERING (0: C-style numbering).</summary>
    public const int OptionNumbering = 17;

    public const int Ok = 1;
    public const int ErrorInput = -2;
    public const int ErrorMemory = -3;
    public const int Error = -4;

    [LibraryImport(Library, EntryPoint = "METIS_PartGraphKway")]
    public static partial int PartGraphKway(int* nvtxs, int* ncon, int* xadj, int* adjncy, int* vwgt, int* vsize,
        int* adjwgt, int* nparts, float* tpwgts, float* ubvec, int* options, int* edgecut, int* part);

    [LibraryImport(Library, EntryPoint = "METIS_SetDefaultOptions")]
    public static partial int SetDefaultOptions(int* options);

    private static readonly Lazy<int> IdxWidthBits = new(MeasureIdxWidth);

    /// <summary>idx_t's width in bits in the loaded library, measured once (see the class summary).</summary>
    public static int MeasuredIdxWidthBits => IdxWidthBits.Value;

    /// <summary>Throws <see cref="NotSupportedException"/> unless the loaded library's idx_t is 32 bits.</summary>
    public static void CheckIdxWidth()
    {
        if (IdxWidthBits.Value != 32)
            throw new NotSupportedException(
                $"{Library} was built with {IdxWidthBits.Value}-bit idx_t; Jetpack's bindings need Debian's 32-bit build (libmetis5)");
    }

    private static int MeasureIdxWidth()
    {
        const byte sentinel = 0x77;
        var buffer = new byte[NOptions * sizeof(long)];
        Array.Fill(buffer, sentinel);
        int status;
        fixed (byte* p = buffer)
            status = SetDefaultOptions((int*)p);
        if (status != Ok)
            throw new MetisException(status, "METIS_SetDefaultOptions");
        int written = Array.FindLastIndex(buffer, b => b != sentinel) + 1;
        return written * 8 / NOptions;
    }
}
