namespace Jetpack.Protocol.Channels;

/// <summary>How the data plane's tensors travel between ranks (every worker receives both).</summary>
public enum DataPlaneTransport
{
    /// <summary>gRPC Push streams over HTTP/2 (DESIGN.md's data plane; the default).</summary>
    Grpc,

    /// <summary>
    /// The same <c>DataHeader</c> messages and the same checks, framed on a plain TCP connection per
    /// sender: the bytes go from the sender's tensor storage to the socket and from the socket into
    /// the receiver's tensor storage with no copy in between. `jetpack bench exchange` measures why it
    /// exists: on this machine .NET's HTTP/2 stack moves 20–35% of what raw TCP does.
    /// </summary>
    Tcp,
}

/// <summary>The one parser of transport names, shared by the worker's and the launcher's command lines.</summary>
public static class DataPlaneTransports
{
    /// <summary>The transport named <paramref name="text"/> ("grpc" or "tcp"), for command lines and configs.</summary>
    public static DataPlaneTransport Parse(string text, string field) => text.Trim().ToLowerInvariant() switch
    {
        "grpc" => DataPlaneTransport.Grpc,
        "tcp" => DataPlaneTransport.Tcp,
        _ => throw new ArgumentException($"{field}: '{text}' is not a data-plane transport (grpc or tcp)"),
    };
}
