using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Jetpack.Protocol.Security;

/// <summary>
/// Client side: adds <c>authorization: Bearer &lt;token&gt;</c> to every call's metadata, the one place a
/// client builds that header. (An interceptor rather than CallCredentials, which gRPC applies only over
/// TLS; without certificates, on h2c, the token is the boundary.)
/// </summary>
public sealed class ClusterTokenCallInterceptor(ClusterToken token) : Interceptor
{
    private ClientInterceptorContext<TRequest, TResponse> With<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class where TResponse : class
    {
        var headers = context.Options.Headers ?? new Metadata();
        headers.Add(ClusterToken.MetadataKey, token.HeaderValue);
        return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, With(context));

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, With(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(With(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, With(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(With(context));
}
