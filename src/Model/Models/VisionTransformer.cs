using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Models;

/// <summary>
/// Vision Transformer with timm state-dict names: cls_token, pos_embed, patch_embed.proj,
/// blocks.{i}.*, norm (token pooling) or fc_norm (avg pooling), head. The class token is
/// prepended before the learned position embedding is added (spec §2); avg pooling averages the
/// patch tokens only.
/// </summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly PatchEmbed patch_embed;
    private readonly Parameter cls_token;
    private readonly Parameter pos_embed;
    private readonly ModuleList<VitBlock> blocks;
    private readonly LayerNorm? norm;
    private readonly LayerNorm? fc_norm;
    private readonly Linear head;

    /// <param name="shard">expert parallelism: MoE layers hold only this rank's experts (see <see cref="ExpertShard"/>)</param>
    public VisionTransformer(VitConfig config, Device? device = null, ExpertShard? shard = null) : base(nameof(VisionTransformer))
    {
        config.Validate();
        Config = config;
        patch_embed = new PatchEmbed(config.ImageSize, config.PatchSize, config.InChannels, config.Dim, device);
        cls_token = Init.Param(device, 1, 1, config.Dim);
        Init.Normal(cls_token, 1e-6);                                     // timm: normal std 1e-6
        pos_embed = Init.Param(device, 1, config.NumPatches + 1, config.Dim);
        Init.TruncNormal(pos_embed, 0.02);
        blocks = new ModuleList<VitBlock>(Enumerable.Range(0, config.Depth).Select(i => new VitBlock(config, i, device, shard)).ToArray());
        if (config.Pool == PoolKind.Avg) fc_norm = nn.LayerNorm(config.Dim, eps: config.NormEps, device: device);
        else norm = nn.LayerNorm(config.Dim, eps: config.NormEps, device: device);
        head = nn.Linear(config.Dim, config.NumClasses, device: device);
        Init.TruncNormal(head.weight!); Init.Constant(head.bias!, 0);
        RegisterComponents();
    }

    public VitConfig Config { get; }
    public IReadOnlyList<VitBlock> Blocks => blocks.ToList();

    /// <summary>images [b, c, H, W] → logits [b, classes].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = ForwardTokens(images);                                          // [b, 1+p, d]
        var pooled = Config.Pool == PoolKind.Avg ? x.narrow(1, 1, x.shape[1] - 1).mean([1]) : x.select(1, 0); // [b, d]
        pooled = (fc_norm ?? norm)!.forward(pooled);
        pooled = nn.functional.dropout(pooled, Config.DropRate, training);
        return head.forward(pooled).MoveToOuterDisposeScope();                  // [b, classes]
    }

    /// <summary>images → token features after the last block ([b, 1+p, d]); norm applied for token pooling.</summary>
    public Tensor ForwardTokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = patch_embed.forward(images);                                    // [b, p, d]
        var cls = cls_token.expand(x.shape[0], -1, -1);                         // [b, 1, d]
        x = torch.cat([cls, x], 1) + pos_embed;                                 // [b, 1+p, d]
        x = nn.functional.dropout(x, Config.DropRate, training);
        foreach (var block in blocks) x = block.forward(x);
        return x.MoveToOuterDisposeScope();
    }
}
