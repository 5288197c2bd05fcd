using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Jetpack.Protocol.Security;

/// <summary>
/// Server side: refuses every call (all four kinds) that does not carry <c>authorization: Bearer &lt;token&gt;</c>
/// with <see cref="StatusCode.Unauthenticated"/>. The coordinator and every worker register this one class.
/// </summary>
public sealed class ClusterTokenInterceptor(ClusterToken token) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        if (!token.MatchesHeader(context.RequestHeaders.GetValue(ClusterToken.MetadataKey)))
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method}: missing or wrong cluster token (authorization: Bearer <token>)"));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}
