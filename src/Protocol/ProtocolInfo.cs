namespace Jetpack.Protocol;

/// <summary>Version of the wire contracts. The .proto files and the tensor codec arrive with the
/// expert-parallel engine (issue 5); metric names with the coordinator (issue 6).</summary>
public static class ProtocolInfo
{
    public const int WireFormatVersion = 1;
}
