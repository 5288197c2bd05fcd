using System.Buffers;
using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>
/// The per-image training augmentation of spec §7.2, in mmpretrain/timm order:
/// RandomResizedCrop → horizontal flip → RandAugment (on 8-bit pixels, as PIL) → to float /255 →
/// normalise → RandomErasing (on the normalised values). Each stage is optional
/// (<see cref="AugmentOptions"/>); with a crop off and a Size set, the image must already be that
/// size. Immutable and thread-safe: each call makes its own generator from the sample seed.
/// <para>
/// No torch op per image but the random draws: the crop's resize is <see cref="BicubicResize"/> (PIL's
/// resampler, from the decoder's RGBA pixels in place), the flip is fused into the normalisation
/// (<see cref="PixelNormalizer"/>, a table), and <see cref="ApplyInto(EncodedImage, ulong, Span{float})"/> writes
/// the result straight into a sample's slice of a batch (<see cref="BatchBuffers"/>).
/// </para>
/// </summary>
public sealed class TrainTransform : ITrainTransform
{
    private readonly RandomResizedCrop? _crop;
    private readonly RandAugment? _randAugment;
    private readonly RandomErasing? _erasing;
    private readonly PixelNormalizer _normalizer;
    private long _unseededCalls;

    public TrainTransform(AugmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _crop = options.Crop is { } crop ? new RandomResizedCrop(options.Size!.Value, crop) : null;
        _randAugment = options.RandAugment is { } ra ? new RandAugment(ra) : null;
        _erasing = options.Erasing is { } er ? new RandomErasing(er) : null;
        _normalizer = new PixelNormalizer(options.Mean, options.Std);
    }

    public AugmentOptions Options { get; }
    public int Channels => Options.Channels;

    /// <summary>The output shape [c, size, size], or null without a size (then it is the image's).</summary>
    public long[]? OutputShape => Options.Size is int s ? [Channels, s, s] : null;

    /// <summary>
    /// <see cref="IImageTransform"/> compatibility: seeds from an internal call counter, so the
    /// result is random but only reproducible single-threaded. Loaders should pass a sample seed.
    /// </summary>
    public Tensor Apply(ImagePixels image) =>
        Apply(image, AugmentRandom.SampleSeed(0, 0, Interlocked.Increment(ref _unseededCalls)));

    public Tensor Apply(ImagePixels image, ulong sampleSeed)
    {
        ArgumentNullException.ThrowIfNull(image);
        var shape = OutputShape ?? [Channels, image.Height, image.Width];
        var values = new float[shape[0] * shape[1] * shape[2]];
        ApplyInto(image, sampleSeed, values);
        return tensor(values, shape);
    }

    /// <summary><see cref="Apply(ImagePixels, ulong)"/> written to <paramref name="destination"/> ([c, h, w] floats).</summary>
    public void ApplyInto(ImagePixels image, ulong sampleSeed, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != Channels)
            throw new ArgumentException($"the transform wants {Channels} channel(s), the image has {image.Channels}", nameof(image));
        using var generator = new Generator(sampleSeed);
        var random = new AugmentRandom(generator);
        var pixels = _crop is null ? image : _crop.Apply(image, random);
        Finish(pixels.Data, pixels.Width, pixels.Height, random, destination);
    }

    /// <summary>
    /// The same augmentation from an encoded image, decoding no more than the crop needs: the crop box is
    /// drawn on the full size (the same draws as <see cref="Apply(ImagePixels, ulong)"/>), then the image is
    /// decoded at the smallest JPEG scale (k/8, DCT domain) at which the box still holds ≥ size × size
    /// pixels, and the box is mapped onto it. Without downscaling the result equals the pixel path's.
    /// An undecodable file throws an <see cref="InvalidDataException"/> (<see cref="UndecodableImage"/>).
    /// </summary>
    public Tensor Apply(EncodedImage image, ulong sampleSeed)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (OutputShape is not { } shape) return Apply(image.Decode(Channels), sampleSeed);
        var values = new float[shape[0] * shape[1] * shape[2]];
        ApplyInto(image, sampleSeed, values);
        return tensor(values, shape);
    }

    /// <summary>
    /// <see cref="Apply(EncodedImage, ulong)"/> written to <paramref name="destination"/> ([c, size, size] floats,
    /// e.g. a sample's slice of a <see cref="BatchBuffer"/>). Needs <see cref="AugmentOptions.Size"/>.
    /// </summary>
    public void ApplyInto(EncodedImage image, ulong sampleSeed, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (_crop is null)
        {
            ApplyInto(image.Decode(Channels), sampleSeed, destination);
            return;
        }
        using var generator = new Generator(sampleSeed);
        var random = new AugmentRandom(generator);
        var (left, top, w, h) = _crop.Box(image.Width, image.Height, random);
        int size = _crop.Size, length = size * size * Channels;
        double need = Math.Max((double)size / w, (double)size / h);
        int minWidth = (int)Math.Ceiling(image.Width * need), minHeight = (int)Math.Ceiling(image.Height * need);
        // RandAugment's ops take an ImagePixels (an array of exactly the image); otherwise the crop is scratch.
        var crop = _randAugment is null ? ArrayPool<byte>.Shared.Rent(length) : new byte[length];
        try
        {
            var whole = BicubicResize.Box.Whole(size, size);
            if (Channels == 3)
            {
                // only the box is decoded (its columns through the IDCT, the other rows skipped), RGBA read in place
                var (decodedWidth, decodedHeight) = image.ScaledSize(minWidth, minHeight);
                var box = MapBox(left, top, w, h, image, decodedWidth, decodedHeight);
                using var rgba = image.DecodeRgbaRegion(decodedWidth, decodedHeight, box);
                BicubicResize.Resize(rgba.Data, rgba.Width, 4, 3, box, size, size, whole, crop, rgba.Left, rgba.Top);
            }
            else
            {
                var gray = image.DecodeAtLeast(minWidth, minHeight, 1);
                BicubicResize.Resize(gray.Data, gray.Width, 1, 1, MapBox(left, top, w, h, image, gray.Width, gray.Height), size, size, whole, crop);
            }
            Finish(crop, size, size, random, destination);
        }
        finally
        {
            if (_randAugment is null) ArrayPool<byte>.Shared.Return(crop);
        }
    }

    // The crop box drawn on the full size, on an image decoded at decodedWidth × decodedHeight.
    private static BicubicResize.Box MapBox(int left, int top, int w, int h, EncodedImage image, int decodedWidth, int decodedHeight)
    {
        double sx = (double)decodedWidth / image.Width, sy = (double)decodedHeight / image.Height;
        int l = (int)(left * sx), t = (int)(top * sy);
        int r = Math.Min(decodedWidth, (int)Math.Ceiling((left + w) * sx)), b = Math.Min(decodedHeight, (int)Math.Ceiling((top + h) * sy));
        return new BicubicResize.Box(l, t, r - l, b - t);
    }

    // Flip → RandAugment → normalise → RandomErasing on the 8-bit crop (pixels: at least width·height·c bytes).
    private void Finish(byte[] pixels, int width, int height, AugmentRandom random, Span<float> destination)
    {
        if (Options.Size is int size && (width != size || height != size))
            throw new ArgumentException($"with the crop off the image must be {size}x{size}, got {width}x{height}", nameof(pixels));
        int length = width * height * Channels;
        if (destination.Length != length)
            throw new ArgumentException($"the destination holds {destination.Length} floats, the image {length}", nameof(destination));
        bool flip = Options.FlipProbability > 0 && random.Bernoulli(Options.FlipProbability);
        if (_randAugment is not null)
        {
            var image = new ImagePixels(pixels.Length == length ? pixels : pixels[..length], width, height, Channels);
            if (flip) image = PixelOps.FlipHorizontal(image);
            image = _randAugment.Apply(image, random);
            _normalizer.Write(image.Data, width, height, flip: false, destination);
        }
        else _normalizer.Write(pixels, width, height, flip, destination);              // the flip fused into the write
        _erasing?.ApplyInPlace(destination, Channels, height, width, random);
    }

    /// <summary>The 8-bit stages (crop, flip, RandAugment), exposed for tests.</summary>
    public ImagePixels Augment8Bit(ImagePixels image, AugmentRandom random)
    {
        if (_crop is not null) image = _crop.Apply(image, random);
        if (Options.FlipProbability > 0 && random.Bernoulli(Options.FlipProbability)) image = PixelOps.FlipHorizontal(image);
        if (_randAugment is not null) image = _randAugment.Apply(image, random);
        return image;
    }
}
