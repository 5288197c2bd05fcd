using Jetpack.Model.Data.Augment;
using static Jetpack.Model.Tests.Data.Augment.AugmentTestImages;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>RandAugment's geometric ops (spec §7.2) with PIL's affine conventions.</summary>
public sealed class GeometricOpsTests
{
    private static readonly byte[] Fill = [1, 2, 3];

    [Fact]
    public void Rotate90IsACounterClockwiseQuarterTurn()
    {
        var image = Gradient(16, 16);
        var rotated = GeometricOps.Rotate(image, 90, Fill);
        // CCW: the top-right corner moves to the top-left; out(x, y) = in(w − 1 − y, x).
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(At(image, 15 - y, x, c), At(rotated, x, y, c));
    }

    [Fact]
    public void RotatingAFourfoldSymmetricPatternBy90LeavesItUnchanged()
    {
        // Concentric squares about the centre of a 20 × 20 image.
        var image = Make(20, 20, 1, (x, y, _) => 20 * Math.Max(Math.Abs(2 * x - 19), Math.Abs(2 * y - 19)) / 2 % 256);
        Assert.Equal(image.Data, GeometricOps.Rotate(image, 90, [0]).Data);
        Assert.Equal(image.Data, GeometricOps.Rotate(image, -90, [0]).Data);
        Assert.NotEqual(image.Data, GeometricOps.Rotate(image, 30, [0]).Data);
    }

    [Fact]
    public void TranslateByWholePixelsShiftsAndFills()
    {
        var image = Gradient(10, 6);
        var shifted = GeometricOps.TranslateX(image, 3, Fill);        // content moves left by 3
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 10; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(x + 3 < 10 ? At(image, x + 3, y, c) : Fill[c], At(shifted, x, y, c));
        var down = GeometricOps.TranslateY(image, -2, Fill);          // content moves down by 2
        for (int x = 0; x < 10; x++)
        {
            Assert.Equal(Fill[0], At(down, x, 1, 0));
            Assert.Equal(At(image, x, 0, 0), At(down, x, 2, 0));
        }
    }

    [Fact]
    public void ShearXShiftsRowsInProportionToY()
    {
        var image = Gradient(20, 4);
        var sheared = GeometricOps.ShearX(image, 2.0 / 3.5, Fill);     // row y samples x + (2/3.5)(y + ½): row 3 shifts by 2
        for (int x = 0; x < 18; x++) Assert.Equal(At(image, x + 2, 3, 1), At(sheared, x, 3, 1));
        Assert.Equal(image.Data, GeometricOps.ShearY(image, 0, Fill).Data);
    }

    [Fact]
    public void GrayImagesTakeTheFirstFillValue()
    {
        var image = Make(8, 8, 1, (_, _, _) => 200);
        var shifted = GeometricOps.TranslateX(image, 4, [9, 8, 7]);
        Assert.Equal(9, At(shifted, 7, 0, 0));
    }
}
