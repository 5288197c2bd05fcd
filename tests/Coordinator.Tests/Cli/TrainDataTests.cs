using Jetpack.Coordinator.Cli;
using Jetpack.Model.Data.Augment;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>Each augmentation of the config can be switched off, and the crop's scale set, without touching the rest of the preset.</summary>
public sealed class TrainDataTests
{
    [Fact]
    public void SwitchesTurnOffRandAugmentAndErasingAndSetTheCropScale()
    {
        var preset = AugmentOptions.FashionMnist();
        var light = TrainCommand.ToJobData(new TrainData { RandAugment = false, RandomErasing = false, CropMinScale = 0.5 }).Apply(preset);
        Assert.Null(light.RandAugment);
        Assert.Null(light.Erasing);
        Assert.Equal(0.5, light.Crop!.MinScale);
        Assert.Equal(preset.Crop!.MaxScale, light.Crop.MaxScale);
        Assert.Equal(preset.Mean, light.Mean);
        Assert.Equal(preset.FlipProbability, light.FlipProbability);

        var standard = TrainCommand.ToJobData(new TrainData()).Apply(preset);
        Assert.Equal(preset.RandAugment, standard.RandAugment);
        Assert.Equal(preset.Erasing, standard.Erasing);
        Assert.Equal(preset.Crop, standard.Crop);
    }

    [Fact]
    public void ACropScaleOutsideTheUnitIntervalIsNamed()
    {
        var config = new TrainConfig { Data = new TrainData { CropMinScale = 1.5 } };
        var e = Assert.Throws<InvalidDataException>(() => config.Validate("run.json"));
        Assert.Contains("data.crop_min_scale", e.Message);
        Assert.Contains("run.json", e.Message);
    }
}
