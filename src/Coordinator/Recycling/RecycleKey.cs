using System.Text;
using Jetpack.Coordinator.Jobs;
using Jetpack.Model.Checkpoints;

namespace Jetpack.Coordinator.Recycling;

/// <summary>
/// The content key of a recycling (DESIGN.md: "key: hash of source checkpoint + recipe + seed"):
/// SHA-256 over the successor variant, the SHA-256 of every input file's bytes (so renaming or
/// copying a checkpoint keeps the key, changing one byte changes it) and every recipe choice.
/// An ImageFolder profiling source enters by path (hashing a dataset would cost more than the
/// recycling); Fashion-MNIST is a fixed Debian package.
/// </summary>
public static class RecycleKey
{
    public static string Compute(string model, RecycleSpec spec, Func<string, string> fileSha256)
    {
        var text = new StringBuilder();
        void Line(string name, object? value) => text.Append(name).Append('=').Append(value?.ToString() ?? "-").Append('\n');
        Line("format", 1);
        Line("model", model);
        Line("from", fileSha256(spec.From));
        Line("from_variant", spec.FromVariant);
        Line("target", spec.Target is null ? null : fileSha256(spec.Target));
        Line("target_variant", spec.TargetVariant);
        Line("method", spec.Method.ToLowerInvariant());
        Line("dense_from", spec.DenseFrom);
        Line("seed", spec.Seed);
        Line("graph_parts", spec.GraphParts);
        Line("stats", spec.Stats is null ? null : fileSha256(spec.Stats));
        Line("profile_fashion_mnist", spec.ProfileFashionMnist);
        Line("profile_images", spec.ProfileImages is null ? null : Path.GetFullPath(spec.ProfileImages));
        Line("profile_classes", spec.ProfileClasses);
        Line("profile_count", spec.ProfileFashionMnist || spec.ProfileImages is not null ? spec.ProfileCount : null);
        return Sha256Hex.OfText(text.ToString());
    }
}
