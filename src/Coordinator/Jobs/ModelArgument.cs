using Jetpack.Application.Runs;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// The one reader of a model as users write it, for spec files (<c>model:</c>) and for every
/// <c>--model</c> option (train, recycle, bench, plan): a registry name (<c>v_jetmoe_t</c>), a mapping
/// written inline (<c>'{base: v_jetmoe_t, core_experts: 392, slots_per_expert: 2}'</c>, YAML flow or JSON),
/// or a .yaml/.yml/.json file holding one. Mappings go through <see cref="JobSpecReader"/> (its size,
/// depth and alias limits; unknown fields named) and <see cref="ModelRegistry.Resolve"/> (every field
/// bounded and checked by name). Errors are <see cref="RunSpecException"/>s naming the option or file and the field.
/// </summary>
public static class ModelArgument
{
    /// <summary>Help text of a <c>--model</c> option.</summary>
    public const string Help = "the model: a registry name (`jetpack models`), a mapping such as "
        + "'{base: v_jetmoe_t, core_experts: 392, universal_experts: 784, slots_per_expert: 2, moe_layers: [6..11]}', "
        + "or a .yaml/.json file holding one (fields: " + ModelRequest.Fields + "; docs/models.md)";

    /// <summary>Text of an option → the request (files read, relative to <paramref name="directory"/> or the working directory).</summary>
    public static ModelRequest Parse(string text, string option = "--model", string? directory = null)
    {
        string trimmed = text.Trim();
        if (trimmed.StartsWith('{'))
            return JobSpecReader.ParseAs<ModelRequest>(trimmed, "yaml", option, ModelRequest.Fields);
        return Inline(new ModelRequest { Base = trimmed }, directory ?? Directory.GetCurrentDirectory(), option);
    }

    /// <summary>A request that names a model file, replaced by the mapping the file holds (else returned as it is).</summary>
    public static ModelRequest Inline(ModelRequest request, string directory, string source)
    {
        if (!request.IsFile) return request;
        string path = Path.GetFullPath(request.Base, directory);
        if (!File.Exists(path)) throw new RunSpecException(source, "model", $"model file not found: {path}");
        var inlined = JobSpecReader.ParseAs<ModelRequest>(JobSpecReader.ReadText(path), JobSpecReader.FormatOf(path), path, ModelRequest.Fields);
        if (inlined.IsFile) throw new RunSpecException(path, "base", $"names another model file ('{inlined.Base}'): a model file holds a mapping with a registered base");
        return inlined;
    }

    /// <summary>Text of an option → the resolved model; <paramref name="datasetClasses"/> serves num_classes: auto.</summary>
    public static ModelSpec Resolve(string text, int? datasetClasses = null, string option = "--model") =>
        Resolve(Parse(text, option), option, datasetClasses, fieldPrefix: "");

    /// <summary>A request → the resolved model, errors naming <paramref name="source"/> and the field (<c>model.core_experts</c> in a spec).</summary>
    public static ModelSpec Resolve(ModelRequest request, string source, int? datasetClasses = null, string fieldPrefix = "model.")
    {
        try { return ModelRegistry.Resolve(request, datasetClasses); }
        catch (ModelRequestException e)
        {
            string field = e.Field.Length == 0 || request.IsName ? (fieldPrefix.Length == 0 ? "base" : "model") : fieldPrefix + e.Field;
            throw new RunSpecException(source, field, e.Problem);
        }
    }
}
