using Jetpack.Application.Runs;
using Jetpack.Model.Data.Augment;

namespace Jetpack.Application.Tests.Runs;

/// <summary>Each augmentation of the run's data can be switched off, and the crop's scale set, without touching the rest of the preset.</summary>
public sealed class RunDataTests
{
    [Fact]
    public void SwitchesTurnOffRandAugmentAndErasingAndSetTheCropScale()
    {
        var preset = AugmentOptions.FashionMnist();
        var light = new RunData { RandAugment = false, RandomErasing = false, CropMinScale = 0.5 }.Apply(preset);
        Assert.Null(light.RandAugment);
        Assert.Null(light.Erasing);
        Assert.Equal(0.5, light.Crop!.MinScale);
        Assert.Equal(preset.Crop!.MaxScale, light.Crop.MaxScale);
        Assert.Equal(preset.Mean, light.Mean);
        Assert.Equal(preset.FlipProbability, light.FlipProbability);

        var standard = new RunData().Apply(preset);
        Assert.Equal(preset.RandAugment, standard.RandAugment);
        Assert.Equal(preset.Erasing, standard.Erasing);
        Assert.Equal(preset.Crop, standard.Crop);
    }

    [Fact]
    public void ACropScaleOutsideTheUnitIntervalIsNamed()
    {
        var config = new RunSpec { Data = new RunData { CropMinScale = 1.5 } };
        var e = Assert.Throws<RunSpecException>(() => config.Validate("run.json"));
        Assert.Equal("data.crop_min_scale", e.Field);
        Assert.Contains("run.json", e.Message);
    }

    [Theory]
    [InlineData("5-9", new[] { 5, 6, 7, 8, 9 })]
    [InlineData("0,2, 4", new[] { 0, 2, 4 })]
    [InlineData("7-6,1", new[] { 1, 6, 7 })]
    public void ClassListsAreParsedSorted(string text, int[] expected) => Assert.Equal(expected, ClassList.Parse(text));

    [Fact]
    public void ABadClassListIsNamedByItsField()
    {
        var e = Assert.Throws<RunSpecException>(() => new RunSpec { Data = new RunData { Classes = "0-x" } }.Validate("run.yaml"));
        Assert.Equal("data.classes", e.Field);
        Assert.Contains("'0-x'", e.Problem);
    }
}
