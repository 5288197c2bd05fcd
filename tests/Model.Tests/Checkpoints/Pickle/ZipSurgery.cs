using System.Buffers.Binary;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Edits of a zip's central directory (APPNOTE.TXT §4.3.12, §4.3.16, §4.5.3) that ZipArchive
/// cannot write: lying sizes, including zip64 sizes beyond 4 GiB, for entries whose data is small.
/// Assumes a zip without an archive comment, as ZipArchive writes.
/// </summary>
public static class ZipSurgery
{
    /// <summary>(offset, size) of the central directory, from the end-of-central-directory record.</summary>
    public static (int Offset, int Size) CentralDirectory(byte[] zip)
    {
        int eocd = zip.Length - 22;
        if (BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(eocd)) != 0x06054b50)
            throw new ArgumentException("no end-of-central-directory record at the end (a comment or zip64 end record?)");
        return ((int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(eocd + 16)), (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(eocd + 12)));
    }

    /// <summary>
    /// A copy of <paramref name="zip"/> whose central-directory record of <paramref name="entryName"/>
    /// claims <paramref name="uncompressedSize"/> bytes through a zip64 extra field (the 32-bit field
    /// set to 0xFFFFFFFF). The data and the local header are untouched.
    /// </summary>
    public static byte[] ClaimZip64Size(byte[] zip, string entryName, long uncompressedSize)
    {
        var (cdOffset, cdSize) = CentralDirectory(zip);
        for (int at = cdOffset; at < cdOffset + cdSize;)
        {
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(at + 28));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(at + 30));
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(at + 32));
            string name = System.Text.Encoding.UTF8.GetString(zip, at + 46, nameLength);
            int next = at + 46 + nameLength + extraLength + commentLength;
            if (name == entryName)
            {
                if (extraLength != 0)
                    throw new ArgumentException($"entry '{entryName}' already has extra fields");
                // Zip64 extra: header id 0x0001, data size 8, then the uncompressed size (only the fields set to 0xFFFFFFFF appear).
                var extra = new byte[12];
                BinaryPrimitives.WriteUInt16LittleEndian(extra, 0x0001);
                BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), 8);
                BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(4), uncompressedSize);
                int insertAt = at + 46 + nameLength;
                var result = zip[..insertAt].Concat(extra).Concat(zip[insertAt..]).ToArray();
                BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(at + 24), 0xFFFFFFFF);
                BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(at + 30), (ushort)extra.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(result.Length - 22 + 12), (uint)(cdSize + extra.Length));
                return result;
            }
            at = next;
        }
        throw new ArgumentException($"no central-directory entry '{entryName}'");
    }
}
