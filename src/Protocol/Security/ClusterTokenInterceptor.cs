using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Jetpack.Protocol.Security;

/// <summary>Server side: refuses every call (all four kinds) that does not carry the cluster token.</summary>
public sealed class ClusterTokenInterceptor(ClusterToken token) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        if (!token.Matches(context.RequestHeaders.GetValue(ClusterToken.MetadataKey)))
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method}: missing or wrong cluster token (metadata '{ClusterToken.MetadataKey}')"));
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
