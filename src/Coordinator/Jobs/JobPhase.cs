namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// The phases of a job (DESIGN.md "Coordinator grains"). The numbers equal jobs.proto's JobPhase
/// and the value of the <c>jetpack_job_phase</c> gauge.
/// </summary>
[GenerateSerializer]
public enum JobPhase
{
    Pending = 1,
    Recycling = 2,
    Scattering = 3,
    Training = 4,
    /// <summary>Between a worker loss and the resume from the last checkpoint.</summary>
    Recovering = 5,
    Completed = 6,
    Failed = 7,
    Cancelled = 8,
}
