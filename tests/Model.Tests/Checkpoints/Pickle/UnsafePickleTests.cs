using Jetpack.Model.Checkpoints.Pickle;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// A pickle that names any global outside the allow-list is refused at that opcode, naming the
/// global and the file, and nothing runs: the marker files the malicious fixtures' shell commands
/// would create never appear.
/// </summary>
public sealed class UnsafePickleTests : IDisposable
{
    // The paths written into the fixtures by make_fixtures.py.
    private const string SystemMarker = "/tmp/jetpack-pickle-pwned-system";
    private const string EvalMarker = "/tmp/jetpack-pickle-pwned-eval";

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("malicious.pth", "os.system", SystemMarker)]
    [InlineData("malicious_eval.pth", "builtins.eval", EvalMarker)]
    public void MaliciousFixturesAreRefusedAndNothingRuns(string file, string global, string marker)
    {
        File.Delete(marker); // a leftover from elsewhere must not mask or fake the result
        var path = PickleFixtures.Path(file);
        var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Load(path));
        Assert.Equal(global, e.GlobalName);
        Assert.Contains(global, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal(path, e.FilePath);
        Assert.False(File.Exists(marker), $"{marker} exists: the pickle's command ran");
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("posix", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("builtins", "exec")]
    [InlineData("builtins", "getattr")]
    [InlineData("__builtin__", "getattr")]
    [InlineData("subprocess", "Popen")]
    [InlineData("numpy.core.multiarray", "_reconstruct")]
    [InlineData("torch._utils", "_rebuild_from_type_v2")] // torch's own, but it sets an arbitrary __class__
    [InlineData("torch", "load")]
    [InlineData("collections", "OrderedDict ")] // near misses of allowed names are not allowed
    [InlineData("torch.", "FloatStorage")]
    [InlineData("torch", "floatstorage")]
    public void AnyGlobalOffTheListIsRefusedWhereItIsNamed(string module, string name)
    {
        // Named but never called: GLOBAL alone already fails, before REDUCE could run anything.
        var text = DictPickle(("w", Of(Global(module, name), Str("arg"), Op.Tuple1, Op.Reduce)));
        var stack = Of(Proto(4), Op.EmptyDict, Str("w"), Str(module), Str(name), Op.StackGlobal, Op.SetItem, Op.Stop);
        foreach (var pickle in new[] { text, stack })
        {
            var path = PickleFixtures.WriteArchive(_dir.File($"unsafe-{Guid.NewGuid():N}.pth"), pickle);
            var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Load(path));
            Assert.Equal($"{module}.{name}", e.GlobalName);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AnUnsafeGlobalDeepInsideATensorIsStillRefused()
    {
        // The malicious call hides in a tensor's backward-hooks argument.
        var pickle = DictPickle(("w", Of(Global("torch._utils", "_rebuild_tensor_v2"), Op.Mark, Storage("FloatStorage", "0", 1),
                                         Int(0), Ints(1), Ints(1), Op.NewFalse, Global("os", "system"), Str("true"), Op.Tuple1, Op.Reduce, Op.Tuple, Op.Reduce)));
        var path = PickleFixtures.WriteArchive(_dir.File("hidden.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = new byte[4] });
        Assert.Equal("os.system", Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Load(path)).GlobalName);
    }

    [Theory]
    [InlineData("torch", "FloatStorage")]   // a storage class is a value, not a constructor
    [InlineData("torch", "float32")]
    public void AllowedValueGlobalsCannotBeCalled(string module, string name)
    {
        var path = PickleFixtures.WriteArchive(_dir.File("call.pth"), DictPickle(("w", Of(Global(module, name), Int(3), Op.Tuple1, Op.Reduce))));
        var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("not as a function", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NewObjAndBuildOnlyBuildDicts()
    {
        var newObj = DictPickle(("w", Of(Global("torch._utils", "_rebuild_tensor_v2"), Op.EmptyTuple, Op.NewObj)));
        var buildOnString = DictPickle(("w", Of(Str("x"), Op.EmptyDict, Op.Build)));
        foreach (var (pickle, expected) in new[] { (newObj, "NEWOBJ"), (buildOnString, "BUILD") })
        {
            var path = PickleFixtures.WriteArchive(_dir.File($"{expected}.pth"), pickle);
            var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TheAllowListIsExactlyTheStateDictVocabulary()
    {
        var names = TorchGlobals.Names.ToHashSet();
        Assert.Contains("collections.OrderedDict", names);
        Assert.Contains("torch._utils._rebuild_tensor_v2", names);
        Assert.Contains("torch._utils._rebuild_parameter", names);
        Assert.Contains("torch.BFloat16Storage", names);
        Assert.All(names, n => Assert.True(n.StartsWith("torch.", StringComparison.Ordinal) || n == "collections.OrderedDict", n));
    }
}
