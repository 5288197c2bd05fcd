namespace Jetpack.Protocol.Tests; public class ProtocolInfoTests { [Fact] public void WireFormatVersionIsPositive() => Assert.True(Jetpack.Protocol.ProtocolInfo.WireFormatVersion > 0); }
