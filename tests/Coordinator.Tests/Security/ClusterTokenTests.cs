using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Security;

namespace Jetpack.Coordinator.Tests.Security;

/// <summary>Issue 12: an empty token never means "no authentication", on the coordinator or on the workers.</summary>
public sealed class ClusterTokenTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("short-token")]
    public void TheCoordinatorRefusesAnEmptyOrShortToken(string token)
    {
        var e = Assert.Throws<ArgumentException>(() => new CoordinatorOptions { ClusterToken = token }.Validate());
        Assert.StartsWith("cluster token: ", e.Message);
        new CoordinatorOptions { ClusterToken = null }.Validate();                       // no token at all: an open test coordinator
        new CoordinatorOptions { ClusterToken = ClusterToken.Generate().Value }.Validate();
    }

    [Fact]
    public void AWorkersEmptyTokenFileIsRefusedNamingIt()
    {
        // jetpack-worker reads its token through ClusterToken.Resolve → FromFile: it never had the hole.
        string empty = dir.File("worker.token");
        File.WriteAllText(empty, "\n");
        var e = Assert.Throws<InvalidDataException>(() => ClusterToken.Resolve(empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("at least 16 characters", e.Message);
    }
}
