using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>
/// The per-image training augmentation of spec §7.2, in mmpretrain/timm order:
/// RandomResizedCrop → horizontal flip → RandAugment (on 8-bit pixels, as PIL) → to float /255 →
/// normalise → RandomErasing (on the normalised tensor). Each stage is optional
/// (<see cref="AugmentOptions"/>); with a crop off and a Size set, the image must already be that
/// size. Immutable and thread-safe: each call makes its own generator from the sample seed.
/// </summary>
public sealed class TrainTransform : ITrainTransform
{
    private readonly RandomResizedCrop? _crop;
    private readonly RandAugment? _randAugment;
    private readonly RandomErasing? _erasing;
    private readonly float[] _mean;
    private readonly float[] _std;
    private long _unseededCalls;

    public TrainTransform(AugmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _crop = options.Crop is { } crop ? new RandomResizedCrop(options.Size!.Value, crop) : null;
        _randAugment = options.RandAugment is { } ra ? new RandAugment(ra) : null;
        _erasing = options.Erasing is { } er ? new RandomErasing(er) : null;
        _mean = [.. options.Mean];
        _std = [.. options.Std];
    }

    public AugmentOptions Options { get; }
    public int Channels => Options.Channels;

    /// <summary>
    /// <see cref="IImageTransform"/> compatibility: seeds from an internal call counter, so the
    /// result is random but only reproducible single-threaded. Loaders should pass a sample seed.
    /// </summary>
    public Tensor Apply(ImagePixels image) =>
        Apply(image, AugmentRandom.SampleSeed(0, 0, Interlocked.Increment(ref _unseededCalls)));

    public Tensor Apply(ImagePixels image, ulong sampleSeed)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != Channels)
            throw new ArgumentException($"the transform wants {Channels} channel(s), the image has {image.Channels}", nameof(image));
        using var generator = new Generator(sampleSeed);
        var random = new AugmentRandom(generator);
        return Finish(Augment8Bit(image, random), random);
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
        using var generator = new Generator(sampleSeed);
        var random = new AugmentRandom(generator);
        ImagePixels pixels;
        if (_crop is not null)
        {
            var (left, top, w, h) = _crop.Box(image.Width, image.Height, random);
            double need = Math.Max((double)_crop.Size / w, (double)_crop.Size / h);
            var decoded = image.DecodeAtLeast((int)Math.Ceiling(image.Width * need), (int)Math.Ceiling(image.Height * need), Channels);
            double sx = (double)decoded.Width / image.Width, sy = (double)decoded.Height / image.Height;
            int l = (int)(left * sx), t = (int)(top * sy);
            int r = Math.Min(decoded.Width, (int)Math.Ceiling((left + w) * sx)), b = Math.Min(decoded.Height, (int)Math.Ceiling((top + h) * sy));
            pixels = RandomResizedCrop.CropResize(decoded, l, t, r - l, b - t, _crop.Size);
        }
        else pixels = image.Decode(Channels);
        return Finish(AugmentAfterCrop(pixels, random), random);
    }

    private Tensor Finish(ImagePixels pixels, AugmentRandom random)
    {
        if (Options.Size is int size && (pixels.Width != size || pixels.Height != size))
            throw new ArgumentException($"with the crop off the image must be {size}x{size}, got {pixels.Width}x{pixels.Height}", nameof(pixels));

        using var scope = NewDisposeScope();
        // h, w: output size
        var x = tensor(pixels.Data, [pixels.Height, pixels.Width, Channels], ScalarType.Byte)
            .permute(2, 0, 1).to(ScalarType.Float32);                                 // [c, h, w], 0..255
        var mean = tensor(_mean, [Channels, 1, 1]);                                   // [c, 1, 1]
        var std = tensor(_std, [Channels, 1, 1]);                                     // [c, 1, 1]
        var result = (x.div(EvalTransform.Full) - mean).div_(std).contiguous();                      // [c, h, w]
        _erasing?.ApplyInPlace(result, random);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The 8-bit stages (crop, flip, RandAugment), exposed for tests.</summary>
    public ImagePixels Augment8Bit(ImagePixels image, AugmentRandom random)
    {
        if (_crop is not null) image = _crop.Apply(image, random);
        return AugmentAfterCrop(image, random);
    }

    private ImagePixels AugmentAfterCrop(ImagePixels image, AugmentRandom random)
    {
        if (Options.FlipProbability > 0 && random.Bernoulli(Options.FlipProbability)) image = PixelOps.FlipHorizontal(image);
        if (_randAugment is not null) image = _randAugment.Apply(image, random);
        return image;
    }
}
