using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using TorchSharp;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Data;

/// <summary>
/// Decode + eval transform against torchvision 0.14 + Pillow 9.4 running timm's eval pipeline on
/// the same files (Fixtures/make_eval_fixture.py; regenerate with
/// <c>/usr/bin/python3 tests/Model.Tests/Data/Fixtures/make_eval_fixture.py</c>).
/// </summary>
public sealed class EvalTransformParityTests(ITestOutputHelper output)
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Data", "Fixtures");

    // One 8-bit level after normalising with std 0.5, and with ImageNet's smallest std (0.224).
    private const float LevelAtStdHalf = 2f / 255f;
    private const float LevelAtImageNetStd = 1f / 255f / 0.224f;

    public static TheoryData<string, string, string, int> LosslessCases() => new()
    {
        { "texture_pred32", "texture.png", "predecessor32", 3 },     // shrink by 1.9
        { "small_pred32", "small.png", "predecessor32", 3 },         // enlarge by 1.75
        { "gray_pred32", "gray.png", "predecessor32", 3 },           // L → RGB
        { "rgba_pred32", "rgba.png", "predecessor32", 3 },           // alpha dropped, not premultiplied
        { "texture_imagenet24", "texture.png", "imagenet24", 3 },
        { "texture_L_pred32", "texture.png", "predecessor32gray", 1 }, // RGB → L (PIL luma)
    };

    /// <summary>
    /// PNG decoding is exact and the resize is PIL's own fixed-point arithmetic (<see cref="BicubicResize"/>), the
    /// normalisation torch's float ops: the tensors equal torchvision's exactly. (The bound of one level on ≤ 2% of
    /// values is kept for the report; the torch resampler this replaced needed it.)
    /// </summary>
    [Theory]
    [MemberData(nameof(LosslessCases))]
    public void PngMatchesTorchvisionWithinOneLevel(string expectedName, string file, string transformName, int channels)
    {
        var transform = Transform(transformName);
        using var reader = SafetensorsReader.Open(Path.Combine(FixtureDir, "eval_transform_expected.safetensors"));
        using var expected = reader.ReadTensor(expectedName);
        using var actual = transform.Apply(ImageDecoder.Decode(Path.Combine(FixtureDir, file), channels));

        Assert.Equal(expected.shape, actual.shape);
        using var diff = (actual - expected).abs();
        float max = diff.max().item<float>();
        float level = transformName == "imagenet24" ? LevelAtImageNetStd : LevelAtStdHalf;
        long off = (diff > level / 2).sum().item<long>();
        output.WriteLine($"{expectedName}: max |diff| {max:G4} ({max / level:F2} levels), {off} of {diff.numel()} values off");
        Assert.True(max <= level * 1.001f, $"{expectedName}: max |diff| {max} exceeds one level {level}");
        Assert.True(off <= diff.numel() / 50, $"{expectedName}: {off} of {diff.numel()} values differ");
        Assert.Equal(0f, max);
    }

    /// <summary>
    /// JPEG: Skia's and Pillow's libjpeg builds may differ in IDCT and chroma upsampling, so the
    /// decoded pixels are compared first, with a tolerance, and then the transformed tensor.
    /// </summary>
    [Fact]
    public void JpegMatchesTorchvisionWithinDecoderTolerance()
    {
        using var reader = SafetensorsReader.Open(Path.Combine(FixtureDir, "eval_transform_expected.safetensors"));
        var pixels = ImageDecoder.Decode(Path.Combine(FixtureDir, "photo.jpg"), 3);
        using var pilPixels = reader.ReadTensor("photo_decoded");                 // [h, w, 3] uint8
        Assert.Equal(new long[] { pixels.Height, pixels.Width, 3 }, pilPixels.shape);
        using var ours = torch.tensor(pixels.Data, [pixels.Height, pixels.Width, 3], torch.ScalarType.Byte);
        using var decodeDiff = (ours.to(torch.ScalarType.Int32) - pilPixels.to(torch.ScalarType.Int32)).abs();
        int maxDecode = decodeDiff.max().item<int>();

        using var expected = reader.ReadTensor("photo_pred32");
        using var actual = Transform("predecessor32").Apply(pixels);
        using var diff = (actual - expected).abs();
        float max = diff.max().item<float>();
        output.WriteLine($"photo.jpg: decoded max |diff| {maxDecode} levels; transformed max |diff| {max / LevelAtStdHalf:F2} levels");
        Assert.True(maxDecode <= 2, $"decoded pixels differ from Pillow's by up to {maxDecode} levels");
        Assert.True(max <= 3 * LevelAtStdHalf, $"transformed image differs by {max / LevelAtStdHalf} levels");
    }

    private static EvalTransform Transform(string name) => name switch
    {
        "predecessor32" => EvalTransform.Predecessor(32),
        "imagenet24" => EvalTransform.ImageNet(24),
        "predecessor32gray" => new EvalTransform(32, 0.9, [0.5f], [0.5f]),
        _ => throw new ArgumentException(name),
    };
}
