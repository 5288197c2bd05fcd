using Grpc.Core;

namespace Jetpack.Protocol.Codec;

/// <summary>The status codes of the wire's refusals, in one place.</summary>
public static class WireErrors
{
    /// <summary>A message that does not match what the receiver expects (shape, dtype, size, tag).</summary>
    public static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>A message from a rank or job this worker does not serve now.</summary>
    public static RpcException Refused(string message) => new(new Status(StatusCode.PermissionDenied, message));

    public static string Shape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
