using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.Coordinator.Hosting;
using Microsoft.Extensions.Options;

namespace Jetpack.Coordinator.Services;

/// <summary>
/// DESIGN.md "Trust boundaries": when a cluster token is configured, every gRPC call must carry
/// <c>authorization: Bearer &lt;token&gt;</c>; compared in constant time.
/// </summary>
public sealed class ClusterTokenInterceptor(IOptions<CoordinatorOptions> options) : Interceptor
{
    // Only null means "no token": CoordinatorOptions.Validate refuses an empty or short one.
    readonly byte[]? expected = options.Value.ClusterToken is { } t ? Encoding.UTF8.GetBytes("Bearer " + t) : null;

    void Check(ServerCallContext context)
    {
        if (expected is null) return;
        string? given = context.RequestHeaders.GetValue("authorization");
        if (given is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected))
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method}: missing or wrong cluster token (authorization: Bearer <token>)"));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}
