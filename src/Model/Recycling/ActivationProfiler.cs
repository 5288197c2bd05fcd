using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Recycling;

/// <summary>
/// Activation profiling of a dense predecessor (spec §5.2): forward hooks on every block record
/// (a) the MLP GELU output (hidden units), (b) the norm2 output (channels) and (c) the input of
/// attn.proj (attention dims; ViT only). Runs in eval mode without gradients.
/// </summary>
public static class ActivationProfiler
{
    /// <summary>The hook sites of a model: (site name, module name, hook on input?).</summary>
    public static IReadOnlyList<(string Site, string Module, bool Input)> SitesOf(ModelSpec spec)
    {
        var sites = new List<(string, string, bool)>();
        if (spec.Vit is { } v)
            for (int i = 0; i < v.Depth; i++)
            {
                sites.Add(($"blocks.{i}.mlp.act", $"blocks.{i}.mlp.act", false));
                sites.Add(($"blocks.{i}.norm2", $"blocks.{i}.norm2", false));
                sites.Add(($"blocks.{i}.attn.proj.input", $"blocks.{i}.attn.proj", true));
            }
        else
            for (int s = 0; s < 4; s++)
                for (int i = 0; i < spec.ConvNeXt!.Depths[s]; i++)
                {
                    sites.Add(($"stages.{s}.blocks.{i}.mlp.act", $"stages.{s}.blocks.{i}.mlp.act", false));
                    sites.Add(($"stages.{s}.blocks.{i}.norm", $"stages.{s}.blocks.{i}.norm", false));
                }
        return sites;
    }

    /// <param name="coActivationSites">sites that also collect co-activation counts (graph partitioning); costly</param>
    /// <param name="progress">called with the number of images done after each batch</param>
    /// <param name="kinds">statistics per unit; each costs one pass over every hooked activation</param>
    /// <param name="attentionInputs">hook (c), the attn.proj input: only paper-literal dense selection (spec §5.7) uses it</param>
    public static ActivationStats Profile(ModelSpec spec, nn.Module<Tensor, Tensor> model, IEnumerable<Tensor> batches,
                                          ISet<string>? coActivationSites = null, Action<long>? progress = null,
                                          StatKinds kinds = StatKinds.All, bool attentionInputs = true)
    {
        if (spec.Vit?.Moe is not null || spec.ConvNeXt?.StageMoe.Any(m => m is not null) == true)
            throw new ArgumentException($"profiling expects a dense predecessor; '{spec.Variant}' has MoE layers");
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var stats = new List<SiteStats>();
        var removers = new List<Action>();
        try
        {
            foreach (var (site, moduleName, onInput) in SitesOf(spec))
            {
                if (onInput && !attentionInputs) continue;
                if (!modules.TryGetValue(moduleName, out var m) || m is not nn.Module<Tensor, Tensor> module)
                    throw new ArgumentException($"model '{spec.Variant}' has no module '{moduleName}' to profile");
                int width = site.EndsWith(".act") ? HiddenWidth(spec, site) : ChannelWidth(spec, site);
                var s = new SiteStats(site, width, coActivationSites?.Contains(site) == true, kinds);
                stats.Add(s);
                if (onInput)
                {
                    var h = module.register_forward_pre_hook((_, input) => { s.Add(input); return null!; });
                    removers.Add(h.remove);
                }
                else
                {
                    var h = module.register_forward_hook((_, _, output) => { s.Add(output); return null!; });
                    removers.Add(h.remove);
                }
            }

            model.eval();
            long images = 0;
            using var _ = no_grad();
            foreach (var batch in batches)
            {
                using (var scope = NewDisposeScope()) model.forward(batch);
                images += batch.shape[0];
                progress?.Invoke(images);
            }
            if (images == 0) throw new ArgumentException("profiling got no images");
            return new ActivationStats(spec.Variant, stats, images);
        }
        catch
        {
            foreach (var s in stats) s.Dispose();
            throw;
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
    }

    static int HiddenWidth(ModelSpec spec, string site) =>
        spec.Vit is { } v ? v.MlpHidden : 4 * ChannelWidth(spec, site);

    static int ChannelWidth(ModelSpec spec, string site) =>
        spec.Vit is { } v ? v.Dim : spec.ConvNeXt!.Dims[int.Parse(site.Split('.')[1])];
}
