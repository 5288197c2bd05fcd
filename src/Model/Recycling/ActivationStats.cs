using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;

namespace Jetpack.Model.Recycling;

/// <summary>Which statistic of a unit's activations measures its importance (spec §5.2–5.3).</summary>
public enum ImportanceStat
{
    /// <summary>√(Σ a²) over images × tokens (the reference default, "L2").</summary>
    L2,
    /// <summary>Σ |a|.</summary>
    L1,
    /// <summary>#(a &gt; 0) ("act_patrn").</summary>
    ActivationCount,
}

/// <summary>Which per-unit statistics a profiling run collects (each costs one pass over the activations).</summary>
[Flags]
public enum StatKinds
{
    L2 = 1,
    L1 = 2,
    ActivationCount = 4,
    All = L2 | L1 | ActivationCount,
}

/// <summary>
/// Per-unit activation statistics of one hook site (e.g. <c>blocks.7.mlp.act</c>), averaged over
/// hook calls (batches) as spec §5.2 says: each call contributes its L2 norm, L1 sum and positive
/// count over (images × tokens), and optionally the co-activation counts C_jk = Σ 1[a_j&gt;0]1[a_k&gt;0].
/// </summary>
public sealed class SiteStats : IDisposable
{
    private readonly Tensor? l2, l1, count;   // running sums over calls, float64 [width]
    private readonly Tensor? coact;           // running sum, float64 [width, width]

    public SiteStats(string site, int width, bool coActivation, StatKinds kinds = StatKinds.All)
    {
        Site = site;
        Width = width;
        if (kinds.HasFlag(StatKinds.L2)) l2 = torch.zeros(width, ScalarType.Float64);
        if (kinds.HasFlag(StatKinds.L1)) l1 = torch.zeros(width, ScalarType.Float64);
        if (kinds.HasFlag(StatKinds.ActivationCount)) count = torch.zeros(width, ScalarType.Float64);
        if (coActivation) coact = torch.zeros(width, width, ScalarType.Float64);
    }

    private SiteStats(string site, int width, Tensor? l2, Tensor? l1, Tensor? count, Tensor? coact, long calls)
    {
        Site = site; Width = width;
        this.l2 = l2; this.l1 = l1; this.count = count; this.coact = coact; Calls = calls;
    }

    public string Site { get; }
    public int Width { get; }
    public long Calls { get; private set; }
    public bool HasCoActivation => coact is not null;
    public StatKinds Kinds => (l2 is null ? 0 : StatKinds.L2) | (l1 is null ? 0 : StatKinds.L1) | (count is null ? 0 : StatKinds.ActivationCount);

    /// <summary>Adds one hook call; a: activations [..., width] on any device.</summary>
    public void Add(Tensor a)
    {
        if (a.shape[^1] != Width) throw new ArgumentException($"{Site}: activation width {a.shape[^1]}, expected {Width}");
        using var scope = NewDisposeScope();
        var f = a.detach().reshape(-1, Width).to(ScalarType.Float32);            // [images·tokens, width]
        // One elementwise pass + one column sum per statistic (~7 ms each for 6304×1536 on 2 cores); a
        // literal `sum(0)` would bind to TorchSharp's sum(ScalarType) overload (0 converts to any enum).
        long[] rowsDim = [0];
        l2?.add_(f.square().sum(rowsDim).sqrt_().to(ScalarType.Float64, CPU));
        l1?.add_(f.abs().sum(rowsDim).to(ScalarType.Float64, CPU));
        if (count is not null || coact is not null)
        {
            var active = f.relu().sign_();                                          // 1 where a > 0, else 0
            count?.add_(active.sum(rowsDim).to(ScalarType.Float64, CPU));
            if (coact is not null)
            {
                // 0/1 products summed in fp32: exact while a batch has < 2²⁴ rows. bf16 inputs are exact
                // for 0/1 and ~3.7× faster on this CPU (ENVIRONMENT.md). Cost: rows·width² MACs.
                var b = active.to(ScalarType.BFloat16);
                coact.add_(b.t().matmul(b).to(ScalarType.Float64, CPU));
            }
        }
        Calls++;
    }

    /// <summary>The mean over calls of the chosen statistic, [width] float64 on the CPU.</summary>
    public Tensor Importance(ImportanceStat stat)
    {
        if (Calls == 0) throw new InvalidOperationException($"{Site}: no activations were recorded");
        var sum = stat switch { ImportanceStat.L2 => l2, ImportanceStat.L1 => l1, _ => count }
            ?? throw new InvalidOperationException($"{Site}: statistic {stat} was not collected (profile with --statistics all)");
        return sum / Calls;
    }

    /// <summary>Mean co-activation counts per call, [width, width]; null when not collected.</summary>
    public Tensor? CoActivation() => coact is null ? null : coact / Math.Max(Calls, 1);

    public IEnumerable<KeyValuePair<string, Tensor>> Tensors()
    {
        if (l2 is not null) yield return new($"{Site}.l2_sum", l2);
        if (l1 is not null) yield return new($"{Site}.l1_sum", l1);
        if (count is not null) yield return new($"{Site}.positive_count_sum", count);
        if (coact is not null) yield return new($"{Site}.coactivation_sum", coact);
    }

    internal static SiteStats From(SafetensorsReader r, string site, int width, long calls)
    {
        Tensor? Read(string suffix) => r.Contains($"{site}.{suffix}") ? r.ReadTensor($"{site}.{suffix}") : null;
        return new(site, width, Read("l2_sum"), Read("l1_sum"), Read("positive_count_sum"), Read("coactivation_sum"), calls);
    }

    public void Dispose()
    {
        l2?.Dispose(); l1?.Dispose(); count?.Dispose(); coact?.Dispose();
    }
}

/// <summary>All hook sites of one profiling run, saved as safetensors so recycling can be re-run without profiling.</summary>
public sealed class ActivationStats : IDisposable
{
    public const string Kind = "jetpack.activation_stats";

    public ActivationStats(string modelVariant, IEnumerable<SiteStats> sites, long images)
    {
        ModelVariant = modelVariant;
        Sites = sites.ToDictionary(s => s.Site);
        Images = images;
    }

    public string ModelVariant { get; }
    public IReadOnlyDictionary<string, SiteStats> Sites { get; }
    public long Images { get; set; }

    public SiteStats this[string site] => Sites.TryGetValue(site, out var s) ? s
        : throw new KeyNotFoundException($"activation statistics have no site '{site}' (have: {string.Join(", ", Sites.Keys.Take(6))}, …)");

    public void Save(string path, IReadOnlyDictionary<string, string>? extra = null)
    {
        var meta = new Dictionary<string, string>
        {
            ["jetpack.kind"] = Kind, ["variant"] = ModelVariant, ["images"] = Images.ToString(),
            ["sites"] = string.Join(';', Sites.Values.Select(s => $"{s.Site}={s.Calls}:{s.Width}")),
        };
        if (extra is not null) foreach (var (k, v) in extra) meta[k] = v;
        SafetensorsWriter.Write(path, Sites.Values.SelectMany(s => s.Tensors()), meta);
    }

    public static ActivationStats Load(string path)
    {
        using var r = SafetensorsReader.Open(path);
        if (!r.Metadata.TryGetValue("jetpack.kind", out var kind) || kind != Kind)
            throw new InvalidDataException($"{path}: not an activation-statistics file (metadata jetpack.kind is '{kind ?? "missing"}')");
        var sites = r.Metadata["sites"].Split(';', StringSplitOptions.RemoveEmptyEntries).Select(entry =>
        {
            var parts = entry.Split('=', ':');
            return SiteStats.From(r, parts[0], int.Parse(parts[2]), long.Parse(parts[1]));
        }).ToList();
        return new ActivationStats(r.Metadata["variant"], sites, long.Parse(r.Metadata["images"]));
    }

    public void Dispose()
    {
        foreach (var s in Sites.Values) s.Dispose();
    }
}
