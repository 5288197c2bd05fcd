namespace Jetpack.Model.Recycling.Graph;

/// <summary>A METIS call returned an error status (rstatus_et in metis.h).</summary>
public sealed class MetisException : Exception
{
    public MetisException(int status, string call)
        : base($"{call} failed: {Describe(status)}")
    {
        Status = status;
    }

    /// <summary>The raw return code: −2 input, −3 memory, −4 other.</summary>
    public int Status { get; }

    public static string Describe(int status) => status switch
    {
        MetisNative.ErrorInput => "METIS_ERROR_INPUT (-2): erroneous inputs and/or options",
        MetisNative.ErrorMemory => "METIS_ERROR_MEMORY (-3): insufficient memory",
        MetisNative.Error => "METIS_ERROR (-4): some other error",
        _ => $"unknown METIS status {status}",
    };
}
