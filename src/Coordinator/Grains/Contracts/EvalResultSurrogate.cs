using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// How Orleans carries and persists the one evaluation record (<see cref="EvalResult"/>, in the Model
/// library, which knows nothing of Orleans). The field ids are those of the former contract record
/// <c>Evaluation(Step, Loss, Top1, Top5, Images)</c>, so job states persisted before read the same.
/// </summary>
[GenerateSerializer]
public struct EvalResultSurrogate
{
    [Id(0)] public long Step;
    [Id(1)] public double Loss;
    [Id(2)] public double Top1;
    [Id(3)] public double Top5;
    [Id(4)] public int Images;
}

[RegisterConverter]
public sealed class EvalResultSurrogateConverter : IConverter<EvalResult, EvalResultSurrogate>
{
    public EvalResult ConvertFromSurrogate(in EvalResultSurrogate s) => new(s.Loss, s.Top1, s.Top5, s.Images) { Step = s.Step };

    public EvalResultSurrogate ConvertToSurrogate(in EvalResult e) => new() { Step = e.Step, Loss = e.Loss, Top1 = e.Top1, Top5 = e.Top5, Images = e.Images };
}
