using Jetpack.Model.Distributed;

namespace Jetpack.Model.Moe;

/// <summary>An MoE layer that can hold only its rank's experts and run them through the shard's exchange (SpheroMoE, Soft MoE).</summary>
public interface IShardedMoe
{
    /// <summary>The shard the layer was built with; null = every expert local.</summary>
    ExpertShard? Shard { get; }
    /// <summary>The experts this layer holds.</summary>
    ExpertRange Range { get; }
}
