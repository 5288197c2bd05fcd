namespace Jetpack.Protocol.Control;

/// <summary>
/// The id of one run of a job on the workers: the coordinator's job id and the attempt number
/// (the JobGrain's, which grows at every scatter), as <c>job#attempt</c>. Workers know a run by this
/// id (JoinJob, StartJob, StopJob, CheckpointNow, WatchProgress, data-plane headers), so nothing of
/// an abandoned attempt — a late StopJob, a stale all-to-all piece — can reach the next one.
/// Metric labels use <see cref="JobOf"/> (the job id, bounded) and <see cref="AttemptOf"/> as a label
/// of its own, never the run id: dashboards select by the plain job id that the coordinator's
/// <c>jetpack_job_phase</c> carries.
/// </summary>
public static class RunId
{
    public const char Separator = '#';

    public static string Of(string jobId, int attempt)
    {
        if (string.IsNullOrWhiteSpace(jobId) || jobId.Contains(Separator))
            throw new ArgumentException($"job id '{jobId}' must be non-empty and must not contain '{Separator}'");
        if (attempt < 1) throw new ArgumentException($"attempt must be ≥ 1, got {attempt}");
        return $"{jobId}{Separator}{attempt}";
    }

    /// <summary>The job id of a run id; a plain job id (the launcher's runs) is its own job.</summary>
    public static string JobOf(string runId)
    {
        int i = runId.LastIndexOf(Separator);
        return i < 0 ? runId : runId[..i];
    }

    /// <summary>The attempt of a run id; a plain job id (the launcher's runs, one attempt) is attempt 1.</summary>
    public static int AttemptOf(string runId)
    {
        int i = runId.LastIndexOf(Separator);
        return i >= 0 && int.TryParse(runId.AsSpan(i + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int a) && a >= 1
            ? a : 1;
    }
}
