using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// The TCP data plane's bulk encryption under TLS (docs/security.md, "Sealed records"). TLS 1.3 (<c>SslStream</c>, mutual,
/// the cluster CA) authenticates the connection; inside it each side sends <see cref="ShareBytes"/> fresh random bytes, and
/// from both shares HKDF-SHA256 derives one AES-256-GCM key and IV per direction. From then on the connection carries
/// <em>sealed records</em> of up to <see cref="RecordBytes"/> instead of SslStream's 16 KiB records: a little-endian int32
/// plaintext length (the additional data), the ciphertext, a 16-byte tag; the nonce is the direction's IV XOR a 64-bit
/// record counter, as in TLS 1.3, so a record replayed, dropped or reordered fails its tag. Every <see cref="RekeyRecords"/>
/// records (128 GiB) both ends step the direction's secret forward (HKDF-Expand, like TLS 1.3's KeyUpdate) and take a new
/// key and IV from it, which keeps each key well inside AES-GCM's data limit (TLS 1.3 allows ~2^38 bytes per key). Why: SslStream spends
/// ~1.7 CPU-ns per byte on this machine where AES-GCM itself takes ~0.25 each way (docs/measured/tls/), which capped the
/// TLS plane at ~⅓–⅔ of plaintext; a sealed record is one AES-GCM call per MiB.
/// </summary>
internal static class SealedRecords
{
    public const int ShareBytes = 32, KeyBytes = 32, IvBytes = 12, TagBytes = 16, LengthBytes = 4;
    /// <summary>Largest plaintext of one record (and the buffers' size); a larger length on the wire is refused before reading it.</summary>
    public const int RecordBytes = 1 << 20;
    /// <summary>Records sealed under one key before both ends step to the next (at <see cref="RecordBytes"/>: 128 GiB).</summary>
    public const ulong RekeyRecords = 1 << 17;
    private static ReadOnlySpan<byte> Salt => "jetpack tcp data plane sealed records v1"u8;

    public static byte[] NewShare() => RandomNumberGenerator.GetBytes(ShareBytes);

    /// <summary>The client's (sender's) and the server's (receiver's) sealing of one connection, from both shares.</summary>
    public static (SealedDirection ClientToServer, SealedDirection ServerToClient) Derive(ReadOnlySpan<byte> clientShare, ReadOnlySpan<byte> serverShare, ulong rekeyRecords = RekeyRecords)
    {
        if (clientShare.Length != ShareBytes || serverShare.Length != ShareBytes)
            throw new ArgumentException($"sealed records: key shares must be {ShareBytes} bytes (got {clientShare.Length} and {serverShare.Length})");
        Span<byte> ikm = stackalloc byte[2 * ShareBytes];
        clientShare.CopyTo(ikm);
        serverShare.CopyTo(ikm[ShareBytes..]);
        Span<byte> prk = stackalloc byte[32];
        HKDF.Extract(HashAlgorithmName.SHA256, ikm, Salt, prk);
        var result = (One(prk, "client to server"u8, rekeyRecords), One(prk, "server to client"u8, rekeyRecords));
        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(ikm);
        return result;
    }

    private static SealedDirection One(ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ulong rekeyRecords)
    {
        Span<byte> secret = stackalloc byte[32];
        HKDF.Expand(HashAlgorithmName.SHA256, prk, secret, label);
        var direction = new SealedDirection(secret, rekeyRecords);
        CryptographicOperations.ZeroMemory(secret);
        return direction;
    }
}

/// <summary>One direction's traffic secret, its current key and IV, and the record counter.</summary>
internal sealed class SealedDirection : IDisposable
{
    private readonly byte[] secret;
    private readonly byte[] iv = new byte[SealedRecords.IvBytes];
    private readonly ulong rekeyRecords;
    private AesGcm aes;
    private ulong sequence;

    public SealedDirection(ReadOnlySpan<byte> trafficSecret, ulong rekeyRecords = SealedRecords.RekeyRecords)
    {
        secret = trafficSecret.ToArray();
        this.rekeyRecords = rekeyRecords;
        aes = KeyFromSecret();
    }

    /// <summary>Records sealed or opened so far.</summary>
    public ulong Sequence => sequence;

    /// <summary>The key and IV of the current secret.</summary>
    private AesGcm KeyFromSecret()
    {
        Span<byte> key = stackalloc byte[SealedRecords.KeyBytes];
        HKDF.Expand(HashAlgorithmName.SHA256, secret, key, "key"u8);
        HKDF.Expand(HashAlgorithmName.SHA256, secret, iv, "iv"u8);
        var cipher = new AesGcm(key, SealedRecords.TagBytes);
        CryptographicOperations.ZeroMemory(key);
        return cipher;
    }

    private void NextNonce(Span<byte> nonce)
    {
        if (sequence > 0 && sequence % rekeyRecords == 0)
        {
            // step the secret forward; the old key is gone from memory once the new one exists
            HKDF.Expand(HashAlgorithmName.SHA256, secret.ToArray(), secret, "next secret"u8);
            aes.Dispose();
            aes = KeyFromSecret();
        }
        iv.CopyTo(nonce);
        ulong n = BinaryPrimitives.ReadUInt64BigEndian(nonce[4..]) ^ sequence++;
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], n);
    }

    public void Seal(ReadOnlySpan<byte> length, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Span<byte> nonce = stackalloc byte[SealedRecords.IvBytes];
        NextNonce(nonce);
        aes.Encrypt(nonce, plaintext, ciphertext, tag, length);
    }

    /// <summary>Opens a record into <paramref name="plaintext"/> (which may be <paramref name="ciphertext"/> itself); false when its tag fails.</summary>
    public bool TryOpen(ReadOnlySpan<byte> length, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[SealedRecords.IvBytes];
        NextNonce(nonce);
        try
        {
            aes.Decrypt(nonce, ciphertext, tag, plaintext, length);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        aes.Dispose();
        CryptographicOperations.ZeroMemory(secret);
    }
}

/// <summary>
/// A connection's stream of sealed records over the socket's stream. Writes collect until a flush or
/// <see cref="SealedRecords.RecordBytes"/> (frames, replies); a large write (a tensor's storage) is sealed straight from the
/// caller's span, a record at a time. A read as large as the next record opens it in place, in the caller's span (a tensor's
/// storage: the ciphertext lands there and is decrypted where it lies); smaller reads go through a record buffer. Not thread-safe:
/// one connection serves one push at a time.
/// </summary>
/// <param name="session">the TLS session the keys were agreed in, disposed with this stream</param>
internal sealed class SealedStream(Stream inner, SealedDirection send, SealedDirection receive, string peer, IDisposable session) : Stream
{
    private readonly byte[] pending = new byte[SealedRecords.RecordBytes];
    private readonly byte[] wire = new byte[SealedRecords.LengthBytes + SealedRecords.RecordBytes + SealedRecords.TagBytes];
    private readonly byte[] opened = new byte[SealedRecords.RecordBytes];
    private int pendingBytes, openedPos, openedLen;
    private int nextLength = -1;                                                // a record whose length is read and whose body is not

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void Write(ReadOnlySpan<byte> data)
    {
        if (pendingBytes + data.Length <= pending.Length && data.Length < pending.Length / 4)
        {
            data.CopyTo(pending.AsSpan(pendingBytes));
            pendingBytes += data.Length;
            return;
        }
        SealPending();
        while (data.Length > 0)
        {
            int n = Math.Min(data.Length, SealedRecords.RecordBytes);
            SealAndSend(data[..n]);
            data = data[n..];
        }
    }

    private void SealPending()
    {
        if (pendingBytes == 0) return;
        SealAndSend(pending.AsSpan(0, pendingBytes));
        pendingBytes = 0;
    }

    private void SealAndSend(ReadOnlySpan<byte> plaintext)
    {
        var length = wire.AsSpan(0, SealedRecords.LengthBytes);
        BinaryPrimitives.WriteInt32LittleEndian(length, plaintext.Length);
        send.Seal(length, plaintext, wire.AsSpan(SealedRecords.LengthBytes, plaintext.Length), wire.AsSpan(SealedRecords.LengthBytes + plaintext.Length, SealedRecords.TagBytes));
        inner.Write(wire, 0, SealedRecords.LengthBytes + plaintext.Length + SealedRecords.TagBytes);
    }

    public override void Flush()
    {
        SealPending();
        inner.Flush();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override int Read(Span<byte> into)
    {
        if (into.Length == 0) return 0;
        if (openedPos == openedLen)
        {
            if (nextLength < 0 && !ReadLength()) return 0;
            int n = nextLength;
            nextLength = -1;
            if (into.Length >= n)
            {
                OpenInto(n, into[..n]);                                         // in place: the caller's span holds ciphertext, then plaintext
                return n;
            }
            OpenInto(n, opened.AsSpan(0, n));
            openedPos = 0;
            openedLen = n;
        }
        int k = Math.Min(into.Length, openedLen - openedPos);
        opened.AsSpan(openedPos, k).CopyTo(into);
        openedPos += k;
        return k;
    }

    /// <summary>The next record's length (checked before its body is read); false at a clean end between records.</summary>
    private bool ReadLength()
    {
        Span<byte> length = stackalloc byte[SealedRecords.LengthBytes];
        if (!Fill(length, atBoundary: true)) return false;
        int n = BinaryPrimitives.ReadInt32LittleEndian(length);
        if (n < 1 || n > SealedRecords.RecordBytes)
            throw new InvalidDataException($"{peer}: a sealed record of {n} bytes (1 to {SealedRecords.RecordBytes} allowed): the stream is corrupt or not sealed");
        nextLength = n;
        return true;
    }

    private void OpenInto(int n, Span<byte> target)
    {
        Fill(target, atBoundary: false);
        Span<byte> tag = stackalloc byte[SealedRecords.TagBytes];
        Fill(tag, atBoundary: false);
        Span<byte> length = stackalloc byte[SealedRecords.LengthBytes];
        BinaryPrimitives.WriteInt32LittleEndian(length, n);
        if (!receive.TryOpen(length, target, tag, target))
            throw new InvalidDataException($"{peer}: sealed record {receive.Sequence - 1} failed authentication (altered, replayed or reordered on the way)");
    }

    private bool Fill(Span<byte> into, bool atBoundary)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = inner.Read(into[got..]);
            if (n == 0)
            {
                if (got == 0 && atBoundary) return false;
                throw new EndOfStreamException($"{peer}: the connection closed inside a sealed record");
            }
            got += n;
        }
        return true;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            session.Dispose();
            send.Dispose();
            receive.Dispose();
        }
        base.Dispose(disposing);
    }
}
