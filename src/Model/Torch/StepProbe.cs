using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Torch;

/// <summary>
/// Receives region boundaries of a training step (issue 21, `jetpack bench step`'s breakdown). The
/// model core has no clocks: a probe lives with its caller (the benchmark) and reads its own.
/// Forward boundaries are called as the forward runs; backward boundaries when autograd reaches the
/// region's output (its backward starts) and when it has produced the gradient of the region's input
/// (its backward ends).
/// </summary>
public interface IStepProbe
{
    void ForwardBegin(string region);
    void ForwardEnd(string region);
    void BackwardBegin(string region);
    void BackwardEnd(string region);
}

/// <summary>
/// Named regions of the forward (and, through identity autograd functions around them, of the
/// backward) reported to the probe attached to the calling thread; none attached costs one check.
/// Regions nest; times are inclusive. A region is marked on one input: backward time is measured from
/// the gradient reaching its output to the gradient of that input.
/// </summary>
public static class StepProbe
{
    [ThreadStatic] private static IStepProbe? current;

    /// <summary>Attaches a probe to this thread until the returned handle is disposed.</summary>
    public static IDisposable Attach(IStepProbe probe)
    {
        var previous = current;
        current = probe;
        return new Detach(() => current = previous);
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="input"/> as the named region.</summary>
    public static Tensor Region(string name, Tensor input, Func<Tensor, Tensor> body)
    {
        if (current is not { } probe) return body(input);
        var marked = Mark.Apply(input, () => probe.BackwardEnd(name));
        probe.ForwardBegin(name);
        var y = body(marked);
        probe.ForwardEnd(name);
        return Mark.Apply(y, () => probe.BackwardBegin(name));
    }

    /// <summary>A region whose body returns two tensors (the router's dispatch and combine weights); backward starts at the first gradient of either.</summary>
    public static (Tensor, Tensor) Region(string name, Tensor input, Func<Tensor, (Tensor, Tensor)> body)
    {
        if (current is not { } probe) return body(input);
        var marked = Mark.Apply(input, () => probe.BackwardEnd(name));
        probe.ForwardBegin(name);
        var (a, b) = body(marked);
        probe.ForwardEnd(name);
        var once = new Once(() => probe.BackwardBegin(name));
        return (Mark.Apply(a, once.Run), Mark.Apply(b, once.Run));
    }

    private sealed class Once(Action action)
    {
        private bool done;
        public void Run() { if (!done) { done = true; action(); } }
    }

    private sealed class Detach(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>Identity in forward; calls its action when its gradient arrives in backward.</summary>
    private sealed class Mark : autograd.SingleTensorFunction<Mark>
    {
        public override string Name => "StepProbeMark";

        public static Tensor Apply(Tensor x, Action onBackward) => x.requires_grad ? apply(x, onBackward) : x;

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("action", vars[1]);
            return ((Tensor)vars[0]).alias();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            try { ((Action)ctx.get_data("action"))(); }
            catch (Exception) { }              // an exception escaping backward aborts the process (ENVIRONMENT.md); timing is best-effort
            return [gradOutput.alias(), null!];     // identity; no gradient for the action
        }
    }
}
