using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Models;

/// <summary>
/// ConvNeXt block (timm names): conv_dw (7×7 depthwise) → channels-last norm → mlp (dense MLP or an
/// MoE taking [b, h, w, c], spec §6.3) → layer scale gamma → DropPath + residual.
/// </summary>
public sealed class ConvNeXtBlock : nn.Module<Tensor, Tensor>, IStochasticModule
{
    private readonly Conv2d conv_dw;
    private readonly LayerNorm norm;
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly Parameter gamma;

    public ConvNeXtBlock(int dim, double layerScale, double eps, double dropPath, nn.Module<Tensor, Tensor> mlp, Device? device)
        : base(nameof(ConvNeXtBlock))
    {
        conv_dw = nn.Conv2d(dim, dim, 7, padding: 3, groups: dim, device: device);
        Init.TruncNormal(conv_dw.weight!); Init.Constant(conv_dw.bias!, 0);
        norm = nn.LayerNorm(dim, eps: eps, device: device);
        this.mlp = mlp;
        gamma = Init.Param(device, dim);
        Init.Constant(gamma, layerScale);
        DropPathRate = dropPath;
        RegisterComponents();
    }

    public nn.Module<Tensor, Tensor> Mlp => mlp;
    public double DropPathRate { get; set; }
    public Generator? Generator { get; set; }

    /// <summary>x: [b, c, h, w] → [b, c, h, w].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv_dw.forward(x).permute(0, 2, 3, 1);                          // [b, h, w, c]
        h = mlp.forward(norm.call(h)) * gamma;                                   // [b, h, w, c] (call: hookable)
        var y = x + Stochastic.DropPath(h.permute(0, 3, 1, 2), DropPathRate, training, Generator);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>One ConvNeXt stage: optional downsample (LayerNorm2d + 2×2 stride-2 conv), then blocks.</summary>
public sealed class ConvNeXtStage : nn.Module<Tensor, Tensor>
{
    private readonly Sequential? downsample;
    private readonly Sequential blocks;

    public ConvNeXtStage(Sequential? downsample, IEnumerable<ConvNeXtBlock> blocks) : base(nameof(ConvNeXtStage))
    {
        this.downsample = downsample;
        this.blocks = nn.Sequential(blocks.Select((b, i) => (i.ToString(), (nn.Module<Tensor, Tensor>)b)));
        RegisterComponents();
    }

    public IEnumerable<ConvNeXtBlock> Blocks => blocks.children().Cast<ConvNeXtBlock>();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = downsample is null ? x : downsample.forward(x);
        return blocks.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// ConvNeXt with timm state-dict names: stem.{0,1}, stages.{s}.downsample.{0,1}, stages.{s}.blocks.{i}.*,
/// head.norm, head.fc. Global average pool → LayerNorm → linear head.
/// </summary>
public sealed class ConvNeXt : nn.Module<Tensor, Tensor>
{
    private readonly Sequential stem;
    private readonly ModuleList<ConvNeXtStage> stages;
    private readonly ConvNeXtHead head;

    public ConvNeXt(ConvNeXtConfig c, Device? device = null, ExpertShard? shard = null) : base(nameof(ConvNeXt))
    {
        c.Validate();
        Config = c;
        var stemConv = nn.Conv2d(c.InChannels, c.Dims[0], 4, stride: 4, device: device);
        Init.TruncNormal(stemConv.weight!); Init.Constant(stemConv.bias!, 0);
        stem = nn.Sequential(("0", stemConv), ("1", new LayerNorm2d(c.Dims[0], c.NormEps, device)));

        int total = c.Depths.Sum(), at = 0;
        var built = new List<ConvNeXtStage>();
        for (int s = 0; s < 4; s++)
        {
            Sequential? down = null;
            if (s > 0)
            {
                var conv = nn.Conv2d(c.Dims[s - 1], c.Dims[s], 2, stride: 2, device: device);
                Init.TruncNormal(conv.weight!); Init.Constant(conv.bias!, 0);
                down = nn.Sequential(("0", new LayerNorm2d(c.Dims[s - 1], c.NormEps, device)), ("1", conv));
            }
            var blocks = new List<ConvNeXtBlock>();
            for (int i = 0; i < c.Depths[s]; i++, at++)
            {
                // MoE DropPath follows the within-stage index; block DropPath the global one (timm).
                int ordinal = Enumerable.Range(0, s).Sum(t => c.StageMoe[t]?.Layers.Length ?? 0) + (c.StageMoe[s]?.Layers.Count(l => l < i) ?? 0);
                var mlp = MoeFactory.FeedForward(c.Dims[s], 4 * c.Dims[s], c.StageMoe[s], i, c.Depths[s], 0, device, shard, ordinal);
                blocks.Add(new ConvNeXtBlock(c.Dims[s], c.LayerScaleInit, c.NormEps, Stochastic.LinearRate(c.DropPathRate, total, at), mlp, device));
            }
            built.Add(new ConvNeXtStage(down, blocks));
        }
        stages = new ModuleList<ConvNeXtStage>(built.ToArray());
        head = new ConvNeXtHead(c.Dims[3], c.NumClasses, c.NormEps, device);
        RegisterComponents();
    }

    public ConvNeXtConfig Config { get; }
    public IReadOnlyList<ConvNeXtStage> Stages => stages.ToList();

    /// <summary>images [b, c, H, W] → logits [b, classes].</summary>
    public override Tensor forward(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != Config.InChannels)
            throw new ArgumentException($"ConvNeXt expects images [b, {Config.InChannels}, H, W], got [{string.Join(", ", images.shape)}]");
        using var scope = NewDisposeScope();
        var x = stem.forward(images);                                            // [b, c0, H/4, W/4]
        foreach (var stage in stages) x = stage.forward(x);                      // [b, c3, H/32, W/32]
        return head.forward(x).MoveToOuterDisposeScope();
    }
}

/// <summary>timm's NormMlpClassifierHead without hidden layer: avg pool → norm → fc. Keys: norm, fc.</summary>
public sealed class ConvNeXtHead : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm2d norm;
    private readonly Linear fc;

    public ConvNeXtHead(int dim, int classes, double eps, Device? device) : base(nameof(ConvNeXtHead))
    {
        norm = new LayerNorm2d(dim, eps, device);
        fc = nn.Linear(dim, classes, device: device);
        Init.TruncNormal(fc.weight!); Init.Constant(fc.bias!, 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pooled = x.mean([2, 3], keepdim: true);                              // [b, c, 1, 1]
        return fc.forward(norm.forward(pooled).flatten(1)).MoveToOuterDisposeScope(); // [b, classes]
    }
}
