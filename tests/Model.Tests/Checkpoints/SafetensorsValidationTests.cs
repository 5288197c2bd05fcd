using System.Buffers.Binary;
using Jetpack.Model.Checkpoints;
using static Jetpack.Model.Tests.Checkpoints.SafetensorsGoldenTests;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// One test per way a file can break the format. Each asserts the exact exception type and that
/// the message names the file and, where one tensor is at fault, that tensor.
/// </summary>
public sealed class SafetensorsValidationTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A valid F32 [2] entry at [begin, end) in single-quote JSON.</summary>
    private static string F32x2(string name, long begin = 0, long end = 8) =>
        $"'{name}':{{'dtype':'F32','shape':[2],'data_offsets':[{begin},{end}]}}";

    private SafetensorsFormatException Rejects(string singleQuotedJson, int dataBytes, string? tensor, string fragment) =>
        RejectsBytes(TempDirectory.SafetensorsBytes(System.Text.Encoding.UTF8.GetBytes(Quote(singleQuotedJson)), new byte[dataBytes]),
                     tensor, fragment);

    private SafetensorsFormatException RejectsBytes(byte[] file, string? tensor, string fragment)
    {
        var fileName = $"bad-{Guid.NewGuid():N}.safetensors";
        var path = _dir.WriteBytes(fileName, file);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsReader.Open(path).Dispose());
        Assert.Contains(fileName, e.Message);
        Assert.Equal(path, e.FilePath);
        Assert.Equal(tensor, e.TensorName);
        if (tensor is not null)
            Assert.Contains($"'{tensor}'", e.Message);
        Assert.Contains(fragment, e.Message);
        return e;
    }

    [Theory]
    [InlineData(1)] // 0 bytes is "is empty (0 bytes)": CheckpointFileTests
    [InlineData(7)]
    public void FileShorterThanEightBytes(int length) => RejectsBytes(new byte[length], null, "fewer than the 8");

    [Fact]
    public void HeaderLengthPastEndOfFile()
    {
        var file = TempDirectory.SafetensorsBytes("{}"u8.ToArray(), []);
        BinaryPrimitives.WriteUInt64LittleEndian(file, 3);
        RejectsBytes(file, null, "runs past the end");
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)] // negative as a signed length: must not wrap
    public void HeaderLengthAbsurd(ulong length)
    {
        var file = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(file, length);
        RejectsBytes(file, null, "exceeds");
    }

    [Theory]
    [InlineData("{'w':")]
    [InlineData("{'w':{'dtype':'F32',}}")] // trailing comma
    [InlineData("{/* comment */}")]
    [InlineData("")]
    public void InvalidJson(string json) => Rejects(json, 0, null, "JSON");

    [Fact]
    public void ContentAfterTheJsonObject() => Rejects("{} x", 0, null, "not valid JSON");

    [Fact]
    public void HeaderNotUtf8()
    {
        byte[] header = [(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}'];
        RejectsBytes(TempDirectory.SafetensorsBytes(header, []), null, "UTF-8");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("'w'")]
    [InlineData("3")]
    [InlineData("null")]
    public void HeaderNotAJsonObject(string json) => Rejects(json, 0, null, "not a JSON object");

    [Theory]
    [InlineData("dtype", "{'w':{'shape':[2],'data_offsets':[0,8]}}")]
    [InlineData("shape", "{'w':{'dtype':'F32','data_offsets':[0,8]}}")]
    [InlineData("data_offsets", "{'w':{'dtype':'F32','shape':[2]}}")]
    public void EntryMissingAField(string field, string json) => Rejects(json, 8, "w", $"no '{field}'");

    [Theory]
    [InlineData("{'w':3}", "not a JSON object")]
    [InlineData("{'w':{'dtype':5,'shape':[2],'data_offsets':[0,8]}}", "'dtype' is not a string")]
    [InlineData("{'w':{'dtype':'F32','shape':'2','data_offsets':[0,8]}}", "'shape' is not an array")]
    [InlineData("{'w':{'dtype':'F32','shape':[2.5],'data_offsets':[0,8]}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[2e0],'data_offsets':[0,8]}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[true],'data_offsets':[0,8]}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[[2]],'data_offsets':[0,8]}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,'8']}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,99999999999999999999]}}", "other than an integer")]
    [InlineData("{'w':{'dtype':'F32','shape':[2],'data_offsets':{}}}", "not an array")]
    [InlineData("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,4,8]}}", "3 numbers, not 2")]
    [InlineData("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8],'extra':1}}", "unknown field 'extra'")]
    [InlineData("{'w':{'dtype':'F32','dtype':'F32','shape':[2],'data_offsets':[0,8]}}", "'dtype' twice")]
    public void EntryWithWrongJsonTypes(string json, string fragment) => Rejects(json, 8, "w", fragment);

    [Fact]
    public void NegativeDimension() =>
        Rejects("{'w':{'dtype':'F32','shape':[-2],'data_offsets':[0,8]}}", 8, "w", "negative number (-2)");

    [Fact]
    public void NegativeOffset() =>
        Rejects("{'w':{'dtype':'F32','shape':[2],'data_offsets':[-8,0]}}", 8, "w", "negative number (-8)");

    [Fact]
    public void ShapeTooLargeToAddress() =>
        Rejects("{'w':{'dtype':'F32','shape':[4611686018427387904,4],'data_offsets':[0,8]}}", 8, "w", "too large");

    [Theory]
    [InlineData("F128")]
    [InlineData("f32")]  // dtype strings are case-sensitive
    [InlineData("U16")]  // valid safetensors, but torch has no uint16 here
    [InlineData("")]
    public void UnknownDType(string dtype) =>
        Rejects($"{{'w':{{'dtype':'{dtype}','shape':[2],'data_offsets':[0,8]}}}}", 8, "w", $"dtype '{dtype}'");

    [Fact]
    public void OffsetsPastTheEndOfTheData() => Rejects("{" + F32x2("w") + "}", 4, "w", "run past the end of the 4-byte data section");

    [Fact]
    public void BeginAfterEnd() =>
        Rejects("{'w':{'dtype':'F32','shape':[0],'data_offsets':[8,0]}}", 8, "w", "begin after they end");

    [Fact]
    public void OverlappingTensors()
    {
        var e = Rejects("{" + F32x2("a", 0, 8) + "," + F32x2("b", 4, 12) + "}", 12, "b", "overlaps");
        Assert.Contains("'a'", e.Message);
    }

    [Fact]
    public void GapBetweenTensors() =>
        Rejects("{" + F32x2("a", 0, 8) + "," + F32x2("b", 12, 20) + "}", 20, "b", "bytes [8, 12) before its data belong to no tensor");

    [Fact]
    public void GapBeforeTheFirstTensor() => Rejects("{" + F32x2("a", 4, 12) + "}", 12, "a", "bytes [0, 4)");

    [Fact]
    public void TrailingBytesAfterTheLastTensor() => Rejects("{" + F32x2("a") + "}", 12, null, "4 trailing bytes");

    [Fact]
    public void DataWithNoTensors() => Rejects("{}", 3, null, "3 trailing bytes");

    [Fact]
    public void ShapeDisagreesWithByteLength() =>
        Rejects("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,8]}}", 8, "w", "needs 12 bytes but data_offsets [0, 8) hold 8");

    [Fact]
    public void DuplicateTensorNames() => Rejects("{" + F32x2("w") + "," + F32x2("w", 8, 16) + "}", 16, "w", "more than once");

    [Fact]
    public void EmptyTensorName() => Rejects("{" + F32x2("") + "}", 8, null, "empty name");

    [Fact]
    public void MetadataValueNotAString() =>
        Rejects("{'__metadata__':{'epoch':3}}", 0, null, "value of 'epoch' is not a string");

    [Theory]
    [InlineData("{'__metadata__':'x'}")]
    [InlineData("{'__metadata__':null}")]
    public void MetadataNotAnObject(string json) => Rejects(json, 0, null, "not a JSON object of strings");

    [Fact]
    public void MetadataKeyTwice() => Rejects("{'__metadata__':{'k':'a','k':'b'}}", 0, null, "key 'k' more than once");

    [Fact]
    public void MetadataTwice() => Rejects("{'__metadata__':{},'__metadata__':{}}", 0, null, "'__metadata__' appears more than once");

    [Fact]
    public void BoolBytesOtherThanZeroOrOne()
    {
        var path = _dir.WriteSafetensors("bools.safetensors", Quote("{'m':{'dtype':'BOOL','shape':[3],'data_offsets':[0,3]}}"), [1, 0, 2]);
        using var reader = SafetensorsReader.Open(path); // the header is fine; the data is not
        var e = Assert.Throws<SafetensorsFormatException>(() => reader.ReadTensor("m"));
        Assert.Equal("m", e.TensorName);
        Assert.Contains("bools.safetensors", e.Message);
        Assert.Contains("element 2 is byte 2", e.Message);
    }

    [Theory]
    [InlineData("{'\\ud800':{'dtype':'F32','shape':[0],'data_offsets':[0,0]}}")] // lone surrogate in a name
    [InlineData("{'__metadata__':{'k':'\\udc00'}}")]                              // ... in a metadata value
    public void EscapedLoneSurrogate(string json) => Rejects(json, 0, null, "JSON");

    /// <summary>Zero elements, yet torch's stride computation would overflow: refused up front
    /// rather than surfacing as torch's ExternalException from ReadTensor.</summary>
    [Theory]
    [InlineData("[0,4611686018427387904,4]")]
    [InlineData("[0,9223372036854775807]")]
    public void ZeroSizedShapeWithHugeDimensions(string shape) =>
        Rejects($"{{'z':{{'dtype':'F32','shape':{shape},'data_offsets':[0,0]}}}}", 0, "z", "too large");
}
