using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Training;

/// <summary>
/// bf16 mixed precision without autocast (TorchSharp has none), spec §7.2 "AMP": the optimiser
/// owns fp32 master weights; forward and backward run on a bf16 shadow copy of the model, so the
/// matmul-heavy work runs in bf16 (≈3.7× faster than fp32 on this CPU's avx512_bf16); the shadow's
/// gradients are widened to fp32 into the masters' <c>.grad</c>, where clipping and AdamW run.
/// The loss is computed in fp32: the logits are widened before the caller's loss function.
///
/// No loss scaling: the reference's fp16 AMP needs a dynamic loss scale because fp16's exponent
/// (5 bits, smallest normal 6e-5) flushes small gradients to zero; bf16 keeps fp32's 8-bit exponent,
/// so gradients that fit fp32's range fit bf16's, and only mantissa precision (8 bits) is lost.
///
/// Costs: a second copy of the model in bf16 (2 bytes per parameter), one master→shadow copy per
/// <see cref="SyncWeights"/> (a pass over all parameters; once per optimiser step suffices, not
/// per micro-batch), and one bf16→fp32 widening of each gradient per <see cref="ForwardBackward"/>.
/// Fused (issue 21, <see cref="AdamW.AttachShadows"/> on CPU): the optimizer writes the shadow as it
/// updates each master, and with <c>keepShadowGradients</c> the bf16 gradients stay on the shadow and
/// are widened once, inside the optimizer pass; both separate passes disappear.
/// </summary>
public sealed class Bf16Forward : IDisposable
{
    private readonly (Parameter Master, Parameter Shadow)[] _params;
    private readonly (Tensor Master, Tensor Shadow)[] _buffers;

    /// <param name="master">The fp32 model the optimiser steps.</param>
    /// <param name="shadow">A second instance of the same architecture; converted to bf16 here and owned by this object.</param>
    public Bf16Forward(nn.Module<Tensor, Tensor> master, nn.Module<Tensor, Tensor> shadow)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(shadow);
        Master = master;
        Shadow = shadow;
        shadow.to(ScalarType.BFloat16);
        var m = master.named_parameters().ToList();
        var s = shadow.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        if (m.Count != s.Count || m.Any(p => !s.ContainsKey(p.name)))
            throw new ArgumentException($"shadow model does not match the master: {m.Count} vs {s.Count} parameters");
        foreach (var (name, p) in m)
        {
            if (p.dtype != ScalarType.Float32)
                throw new ArgumentException($"master parameter {name} is {p.dtype}; master weights must be fp32");
            if (!p.shape.SequenceEqual(s[name].shape))
                throw new ArgumentException($"parameter {name}: master [{string.Join(", ", p.shape)}] vs shadow [{string.Join(", ", s[name].shape)}]");
        }
        _params = [.. m.Select(p => (p.parameter, s[p.name]))];
        var sb = shadow.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        _buffers = [.. master.named_buffers().Where(b => sb.ContainsKey(b.name)).Select(b => (b.buffer, sb[b.name]))];
        SyncWeights();
    }

    public nn.Module<Tensor, Tensor> Master { get; }
    public nn.Module<Tensor, Tensor> Shadow { get; }
    /// <summary>Each fp32 master parameter with its bf16 shadow (for <see cref="AdamW.AttachShadows"/>).</summary>
    public IEnumerable<(Parameter Master, Parameter Shadow)> Pairs => _params;
    /// <summary>The shadow's parameters: where the gradients are when <see cref="ForwardBackward"/> keeps them there.</summary>
    public IEnumerable<Parameter> ShadowParameters => _params.Select(p => p.Shadow);

    /// <summary>Copies (rounding) the fp32 master weights and buffers into the bf16 shadow. Call after each optimiser step.</summary>
    public void SyncWeights()
    {
        using var _ = no_grad();
        foreach (var (m, s) in _params) s.copy_(m);      // copy_ converts fp32 → bf16
        SyncBuffers();
    }

    /// <summary>Copies only the buffers (when the fused optimizer already wrote the parameters' shadows).</summary>
    public void SyncBuffers()
    {
        using var _ = no_grad();
        foreach (var (m, s) in _buffers) s.copy_(m);
    }

    /// <summary>
    /// Runs the shadow forward on <paramref name="input"/> in bf16, applies <paramref name="loss"/>
    /// to the logits widened to fp32, backpropagates, and adds the shadow's gradients (widened to
    /// fp32) to the masters' .grad (accumulating, so several micro-batches make one step). Returns
    /// the loss value. The training mode of the shadow follows the master's. With
    /// <paramref name="keepShadowGradients"/> (one micro-batch per step, fused optimizer) the bf16
    /// gradients stay on the shadow's parameters instead, for the optimizer to widen in its pass.
    /// </summary>
    public float ForwardBackward(Tensor input, Func<Tensor, Tensor> loss, bool keepShadowGradients = false)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(loss);
        Shadow.train(Master.training);
        using var scope = NewDisposeScope();
        foreach (var (_, s) in _params) s.grad = null;
        var x = input.to(ScalarType.BFloat16);                          // a copy of the batch in bf16
        var logits = Shadow.forward(x).to(ScalarType.Float32);         // loss in fp32
        var value = loss(logits);
        if (value.dtype != ScalarType.Float32 || value.numel() != 1)
            throw new InvalidOperationException($"the loss must be an fp32 scalar, got {value.dtype} [{string.Join(", ", value.shape)}]");
        value.backward();
        if (!keepShadowGradients) WidenGradients();
        return value.item<float>();
    }

    /// <summary>Adds the shadow's bf16 gradients, widened to fp32, to the masters' .grad and clears the shadow's (the separate widening pass).</summary>
    public void WidenGradients()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (m, s) in _params)
        {
            if (s.grad is not { } g) continue;
            if (m.grad is { } acc) acc.add_(g);                         // add_ widens bf16 → fp32
            else m.grad = g.to(ScalarType.Float32).DetachFromDisposeScope();
            s.grad = null;
        }
    }

    public void Dispose() => Shadow.Dispose();
}
