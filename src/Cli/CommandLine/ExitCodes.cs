namespace Jetpack.Cli.CommandLine;

/// <summary>The `jetpack` exit codes (scripts branch on them).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A bug: the stack trace was printed.</summary>
    public const int Bug = 1;
    /// <summary>Bad input: a file, an option or a job spec field (named in the message).</summary>
    public const int Usage = 2;
    /// <summary>The coordinator could not be reached (or is shutting down).</summary>
    public const int Unavailable = 3;
    /// <summary>No such job.</summary>
    public const int NotFound = 4;
    /// <summary>A different job already uses this id.</summary>
    public const int Conflict = 5;
    /// <summary>Missing or wrong cluster token.</summary>
    public const int Unauthenticated = 6;
    /// <summary>`watch`: the job ended Failed.</summary>
    public const int JobFailed = 10;
    /// <summary>`watch`: the job ended Cancelled.</summary>
    public const int JobCancelled = 11;
}
