using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Training;

/// <summary>A set of parameters sharing an lr multiplier and a weight decay (spec §7.2 parameter groups).</summary>
public sealed record ParamGroup(string Name, IReadOnlyList<Parameter> Parameters, double LrScale = 1.0, double WeightDecay = 0.0);

/// <summary>
/// AdamW (decoupled weight decay) updating every tensor in place. Two paths with one update rule:
/// on CPU the fused pass (<see cref="AdamWKernel"/>: one multi-threaded AVX-512 pass over raw spans,
/// the clipping scale, the bf16 gradient widening and the bf16 shadow write folded in; issue 21); on
/// other devices (or with <c>fused: false</c>) the torch-ops path below, chunk by chunk. Why not
/// TorchSharp's optim.AdamW: it allocates several full-size temporaries per parameter per step;
/// for a 265M-parameter MoE those are fresh mmap'd buffers (page faults, 1.2 s of a 2.6 s step on
/// 2 cores). Here the only temporary is one chunk-sized buffer (≤ 4 MB, served from the heap), so
/// the update is one memory-bound pass over p, g, m and v.
/// Update: m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p(1 − lr·wd) − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
/// </summary>
public sealed class AdamW : IDisposable
{
    const long ChunkElements = 1 << 20;

    private readonly IReadOnlyList<ParamGroup> groups;
    private readonly Dictionary<Parameter, (Tensor M, Tensor V)> state = new(ReferenceEqualityComparer.Instance);

    private Dictionary<Parameter, Parameter>? shadows;

    /// <param name="fused">use the fused CPU kernel where every parameter is a contiguous fp32 CPU tensor (the torch-ops path otherwise)</param>
    public AdamW(IEnumerable<ParamGroup> groups, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool fused = true)
    {
        this.groups = groups.ToList();
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var g in this.groups)
            foreach (var p in g.Parameters)
                if (!seen.Add(p)) throw new ArgumentException($"a parameter appears in more than one group (second time in '{g.Name}')");
        IsFused = fused && this.groups.All(g => g.Parameters.All(p => RawTensor.Walkable(p, ScalarType.Float32)));
    }

    /// <summary>One group with the same weight decay for everything.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double lr, double weightDecay, bool fused = true)
        : this([new ParamGroup("all", parameters.ToList(), 1.0, weightDecay)], lr, fused: fused) { }

    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public long StepCount { get; private set; }
    public IReadOnlyList<ParamGroup> Groups => groups;
    /// <summary>True when steps run the fused CPU kernel (every parameter a contiguous fp32 CPU tensor, fused not declined).</summary>
    public bool IsFused { get; }
    /// <summary>True when the step also writes the bf16 shadow copies (<see cref="AttachShadows"/>), so no separate master→shadow copy is needed.</summary>
    public bool WritesShadows => shadows is not null;

    /// <summary>
    /// Fuses the bf16 policy into the step (fused path only; <see cref="Bf16Forward"/>): after updating a
    /// master, the step writes its rounded value into the shadow, and a master without a .grad takes its
    /// gradient from the shadow's bf16 .grad, widened in the pass. Returns false (nothing attached) when
    /// the step is not fused or a shadow is not a contiguous bf16 CPU tensor.
    /// </summary>
    public bool AttachShadows(IEnumerable<(Parameter Master, Parameter Shadow)> pairs)
    {
        var map = pairs.ToDictionary(x => x.Master, x => x.Shadow, ReferenceEqualityComparer.Instance as IEqualityComparer<Parameter>);
        if (!IsFused || map.Values.Any(s => !RawTensor.Walkable(s, ScalarType.BFloat16))) return false;
        shadows = map;
        return true;
    }

    /// <summary>Zeroes every gradient: one parallel memset over their storage (fused), else zero_ per tensor.</summary>
    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();                                 // the p.grad wrappers
        var grads = groups.SelectMany(g => g.Parameters).Select(p => p.grad).OfType<Tensor>().ToList();
        if (IsFused && grads.All(g => RawTensor.Walkable(g, ScalarType.Float32)))
            unsafe { AdamWKernel.Zero([.. grads.Select(g => ((IntPtr)RawTensor.Address(g), g.numel() * 4))]); }
        else
            foreach (var g in grads) g.zero_();
    }

    /// <summary>
    /// One AdamW step. <paramref name="gradScale"/> multiplies every gradient first (the clipping
    /// coefficient, <see cref="GradClip.Coefficient"/>): the fused pass applies it on the fly instead
    /// of a separate pass over the gradients.
    /// </summary>
    public void Step(double gradScale = 1.0)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), sqrtBc2 = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        using var _ = no_grad();
        using var scope = NewDisposeScope();                                 // the p.grad wrappers
        var spans = new List<AdamWSpan>();
        foreach (var group in groups)
        {
            double lr = LearningRate * group.LrScale;
            foreach (var p in group.Parameters)
            {
                Parameter? shadow = null;
                shadows?.TryGetValue(p, out shadow);
                var grad = p.grad ?? shadow?.grad;
                if (grad is null) continue;
                if (!state.TryGetValue(p, out var s))
                    state[p] = s = (torch.zeros_like(p).DetachFromDisposeScope(), torch.zeros_like(p).DetachFromDisposeScope()); // live across steps
                if (IsFused) spans.Add(Span(p, grad, s.M, s.V, shadow, lr, group.WeightDecay, lr / bc1));
                else
                {
                    if (gradScale != 1.0) grad.mul_(gradScale);
                    Update(p, grad, s.M, s.V, lr, group.WeightDecay, lr / bc1, sqrtBc2);
                }
            }
        }
        if (IsFused) AdamWKernel.Step(spans, (float)Beta1, (float)Beta2, (float)Eps, (float)sqrtBc2, (float)gradScale);
    }

    private static unsafe AdamWSpan Span(Tensor p, Tensor grad, Tensor m, Tensor v, Parameter? shadow, double lr, double wd, double stepSize)
    {
        bool bf16 = grad.dtype == ScalarType.BFloat16;
        if (!RawTensor.Walkable(grad, bf16 ? ScalarType.BFloat16 : ScalarType.Float32) || !grad.shape.SequenceEqual(p.shape))
            throw new InvalidOperationException($"fused AdamW: a gradient of shape [{string.Join(", ", grad.shape)}], {grad.dtype}, {grad.device} does not fit a parameter of shape [{string.Join(", ", p.shape)}]");
        return new AdamWSpan((float*)RawTensor.Address(p), bf16 ? null : (float*)RawTensor.Address(grad), bf16 ? (ushort*)RawTensor.Address(grad) : null,
                             (float*)RawTensor.Address(m), (float*)RawTensor.Address(v), shadow is null ? null : (ushort*)RawTensor.Address(shadow),
                             p.numel(), (float)(1 - lr * wd), (float)stepSize);
    }

    private void Update(Tensor p, Tensor grad, Tensor m, Tensor v, double lr, double wd, double stepSize, double sqrtBc2)
    {
        using var scope = NewDisposeScope();
        if (!p.is_contiguous() || !grad.is_contiguous())
            throw new InvalidOperationException("AdamW needs contiguous parameters and gradients");
        var pf = p.view(-1); var gf = grad.view(-1); var mf = m.view(-1); var vf = v.view(-1);
        long n = pf.shape[0];
        for (long at = 0; at < n; at += ChunkElements)
        {
            long len = Math.Min(ChunkElements, n - at);
            using var pc = pf.narrow(0, at, len);
            using var gc = gf.narrow(0, at, len);
            using var mc = mf.narrow(0, at, len);
            using var vc = vf.narrow(0, at, len);
            mc.mul_(Beta1).add_(gc, alpha: 1 - Beta1);
            vc.mul_(Beta2).addcmul_(gc, gc, value: 1 - Beta2);
            using var denom = vc.sqrt();                                  // the one chunk-sized temporary
            denom.div_(sqrtBc2).add_(Eps);
            if (wd != 0) pc.mul_(1 - lr * wd);
            pc.addcdiv_(mc, denom, value: -stepSize);
        }
    }

    /// <summary>Moments by parameter, for checkpoints (m, v) and the step count.</summary>
    public IReadOnlyDictionary<Parameter, (Tensor M, Tensor V)> State => state;

    /// <summary>Restores moments (copied) and the step count from a checkpoint.</summary>
    public void Restore(IEnumerable<(Parameter Parameter, Tensor M, Tensor V)> moments, long stepCount)
    {
        using var _ = no_grad();
        foreach (var (p, m, v) in moments)
        {
            if (!m.shape.SequenceEqual(p.shape) || !v.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"optimizer moments of shape [{string.Join(", ", m.shape)}] do not fit a parameter of shape [{string.Join(", ", p.shape)}]");
            if (state.Remove(p, out var old)) { old.M.Dispose(); old.V.Dispose(); }
            state[p] = (m.to(p.dtype, p.device, copy: true).DetachFromDisposeScope(), v.to(p.dtype, p.device, copy: true).DetachFromDisposeScope());
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var (m, v) in state.Values) { m.Dispose(); v.Dispose(); }
        state.Clear();
    }
}
