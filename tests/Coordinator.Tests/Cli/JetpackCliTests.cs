namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>The `jetpack` command line, run as a real process.</summary>
public class JetpackCliTests
{
    static (int Code, string Output) Jetpack(params string[] args) => CliProcess.Jetpack(args);

    [Fact]
    public void ModelsListsTheRegistryWithSpecParameterCounts()
    {
        var (code, output) = Jetpack("models");
        Assert.Equal(0, code);
        Assert.Contains("v_jetmoe_t", output);
        Assert.Contains("265.4", output);
        Assert.Contains("1412.0", output);
    }

    [Fact]
    public void SmokeTrainsASmallVariantAndReportsLossAndTime()
    {
        var (code, output) = Jetpack("smoke", "--variant", "v_jetmoe_fmnist", "--steps", "2", "--batch", "4");
        Assert.True(code == 0, output);
        Assert.Contains("parameters:", output);
        Assert.Contains("images/s", output);
    }

    [Fact]
    public void AnUnknownVariantFailsWithExitCode2AndNamesTheKnownOnes()
    {
        var (code, output) = Jetpack("smoke", "--variant", "vit_huge_lol");
        Assert.Equal(2, code);
        Assert.Contains("unknown model variant 'vit_huge_lol'", output);
        Assert.Contains("v_jetmoe_t", output);
    }

    [Fact]
    public void ABadDeviceFailsWithExitCode2()
    {
        var (code, output) = Jetpack("smoke", "--variant", "v_jetmoe_fmnist", "--device", "tpu");
        Assert.Equal(2, code);
        Assert.Contains("device 'tpu'", output);
    }

    [Fact]
    public void HelpExplainsTheCommands()
    {
        var (code, output) = Jetpack("--help");
        Assert.Equal(0, code);
        foreach (var command in new[] { "models", "smoke", "bench" }) Assert.Contains(command, output);
    }
}
