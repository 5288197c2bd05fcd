namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// A pickle interpreter (protocols 2–5) for exactly what torch.save writes for a state dict.
/// It never imports, calls or instantiates anything: GLOBAL resolves names through the
/// <see cref="TorchGlobals"/> allow-list (anything else is an <see cref="UnsafePickleException"/>),
/// and REDUCE/NEWOBJ/BUILD/BINPERSID on allowed globals only build data (<see cref="TorchCalls"/>).
/// <para>
/// Damage is reported, never tolerated: unknown opcodes, truncation, stack underflow, a memo
/// miss, a lying length or a leftover stack all throw <see cref="TorchCheckpointFormatException"/>
/// with the byte offset and opcode. Each opcode consumes at least one byte, so the loop ends.
/// </para>
/// </summary>
internal sealed class RestrictedUnpickler
{
    private readonly PickleInput _input;
    private readonly TorchCalls _calls;
    private readonly List<object?> _stack = [];
    /// <summary>Stack heights at each open MARK: items below the innermost one are out of reach until it is popped.</summary>
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    private RestrictedUnpickler(ReadOnlyMemory<byte> pickle, string filePath)
    {
        _input = new PickleInput(pickle, filePath);
        _calls = new TorchCalls(_input);
    }

    /// <summary>Interprets <paramref name="pickle"/> (a data.pkl) and returns its top-level object.</summary>
    public static object? Load(ReadOnlyMemory<byte> pickle, string filePath) => new RestrictedUnpickler(pickle, filePath).Run();

    private object? Run()
    {
        while (!_input.AtEnd)
        {
            var opcode = (PickleOpcode)_input.NextOpcode();
            if (opcode == PickleOpcode.Stop)
                return Finish();
            Execute(opcode);
        }
        throw _input.Fail($"data.pkl ends at byte {_input.Length} without a STOP opcode (truncated?)");
    }

    private object? Finish()
    {
        var result = Pop();
        if (_marks.Count > 0 || _stack.Count > 0)
            throw _input.Fail($"STOP leaves {_stack.Count} values and {_marks.Count} marks behind");
        if (!_input.AtEnd)
            throw _input.Fail($"{_input.Length - _input.Position} bytes follow the STOP opcode");
        return result;
    }

    private void Execute(PickleOpcode opcode)
    {
        switch (opcode)
        {
            case PickleOpcode.Proto:
                int version = _input.ReadByte();
                if (version is < 2 or > 5)
                    throw _input.Fail($"pickle protocol {version} is not supported (torch.save writes 2; 2 to 5 are read)");
                break;
            case PickleOpcode.Frame:
                _input.CheckFrame(_input.ReadUInt64()); // framing only batches reads; the opcodes inside are read as usual
                break;

            case PickleOpcode.None: Push(null); break;
            case PickleOpcode.NewTrue: Push(true); break;
            case PickleOpcode.NewFalse: Push(false); break;
            case PickleOpcode.BinInt: Push((long)_input.ReadInt32()); break;
            case PickleOpcode.BinInt1: Push((long)_input.ReadByte()); break;
            case PickleOpcode.BinInt2: Push((long)_input.ReadUInt16()); break;
            case PickleOpcode.Long1: Push(_input.ReadSignedLittleEndian(_input.ReadByte())); break;
            case PickleOpcode.BinFloat: Push(_input.ReadDoubleBigEndian()); break;

            case PickleOpcode.ShortBinUnicode:
            case PickleOpcode.ShortBinString:
                Push(_input.ReadUtf8(_input.ReadByte()));
                break;
            case PickleOpcode.BinUnicode: Push(_input.ReadUtf8(_input.ReadUInt32())); break;
            case PickleOpcode.BinUnicode8: Push(_input.ReadUtf8(_input.ReadUInt64())); break;
            case PickleOpcode.BinString:
                // Python 2 str; torch.load decodes it as UTF-8. The length is signed in the format.
                int length = _input.ReadInt32();
                Push(length >= 0 ? _input.ReadUtf8((ulong)length) : throw _input.Fail($"negative string length {length}"));
                break;

            case PickleOpcode.Mark: _marks.Push(_stack.Count); break;
            case PickleOpcode.EmptyTuple: Push(new PickleTuple([])); break;
            case PickleOpcode.Tuple1: Push(new PickleTuple(PopN(1))); break;
            case PickleOpcode.Tuple2: Push(new PickleTuple(PopN(2))); break;
            case PickleOpcode.Tuple3: Push(new PickleTuple(PopN(3))); break;
            case PickleOpcode.Tuple: Push(new PickleTuple(PopMark())); break;
            case PickleOpcode.EmptyList: Push(new List<object?>()); break;
            case PickleOpcode.List: Push(new List<object?>(PopMark())); break;
            case PickleOpcode.Append: { var item = Pop(); Top<List<object?>>("list").Add(item); break; }
            case PickleOpcode.Appends: { var items = PopMark(); Top<List<object?>>("list").AddRange(items); break; }
            case PickleOpcode.EmptyDict: Push(new PickleDict()); break;
            case PickleOpcode.Dict: { var dict = new PickleDict(); SetItems(dict, PopMark()); Push(dict); break; }
            case PickleOpcode.SetItem: { var value = Pop(); var key = Pop(); SetItem(Top<PickleDict>("dict"), key, value); break; }
            case PickleOpcode.SetItems: { var items = PopMark(); SetItems(Top<PickleDict>("dict"), items); break; }

            case PickleOpcode.BinPut: Put(_input.ReadByte()); break;
            case PickleOpcode.LongBinPut: Put(_input.ReadUInt32()); break;
            case PickleOpcode.Memoize: Put(_memo.Count); break;
            case PickleOpcode.BinGet: Get(_input.ReadByte()); break;
            case PickleOpcode.LongBinGet: Get(_input.ReadUInt32()); break;

            case PickleOpcode.Global:
                Push(ResolveGlobal(_input.ReadLine(), _input.ReadLine()));
                break;
            case PickleOpcode.StackGlobal:
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n)
                        throw _input.Fail($"STACK_GLOBAL needs two strings, got {PickleText.TypeName(module)} and {PickleText.TypeName(name)}");
                    Push(ResolveGlobal(m, n));
                    break;
                }
            case PickleOpcode.Reduce: { var args = Pop(); var callable = Pop(); Push(_calls.Reduce(callable, args)); break; }
            case PickleOpcode.NewObj: { var args = Pop(); var cls = Pop(); Push(_calls.NewObject(cls, args)); break; }
            case PickleOpcode.Build: { var state = Pop(); _calls.Build(Top<object>("value"), state); break; }
            case PickleOpcode.BinPersId: Push(_calls.PersistentLoad(Pop())); break;

            default:
                throw _input.Fail("unsupported opcode: a state dict never needs it");
        }
    }

    /// <summary>The allow-list is consulted at the moment a global is named, before anything could use it.</summary>
    private PickleGlobal ResolveGlobal(string module, string name) =>
        TorchGlobals.Resolve(module, name) ?? throw new UnsafePickleException(_input.FilePath, module, name, _input.OpcodeOffset);

    private void Push(object? value) => _stack.Add(value);

    private object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor)
            throw _input.Fail(_stack.Count == 0 ? "stack underflow" : "pops past a MARK");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object?[] PopN(int count)
    {
        var items = new object?[count];
        for (int i = count - 1; i >= 0; i--)
            items[i] = Pop();
        return items;
    }

    /// <summary>Everything pushed since the innermost MARK, which is closed.</summary>
    private object?[] PopMark()
    {
        if (_marks.Count == 0)
            throw _input.Fail("no MARK is open");
        int start = _marks.Pop();
        var items = _stack.GetRange(start, _stack.Count - start).ToArray();
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    /// <summary>The value on top of the stack, left there (APPEND, SETITEM and BUILD modify it in place).</summary>
    private T Top<T>(string what)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor)
            throw _input.Fail("stack underflow");
        return _stack[^1] is T top ? top : throw _input.Fail($"the operand is a {PickleText.TypeName(_stack[^1])}, not a {what}");
    }

    private void SetItems(PickleDict dict, object?[] items)
    {
        if (items.Length % 2 != 0)
            throw _input.Fail($"{items.Length} items after the MARK: keys and values do not pair up");
        for (int i = 0; i < items.Length; i += 2)
            SetItem(dict, items[i], items[i + 1]);
    }

    /// <summary>Keys are str or int only: they hash by value in C# as in Python (no tuple or float key semantics to reproduce).</summary>
    private void SetItem(PickleDict dict, object? key, object? value)
    {
        if (key is not (string or long))
            throw _input.Fail($"a dict key is a {PickleText.TypeName(key)}; only str and int keys are supported");
        dict.Items[key] = value; // Python keeps the first insertion's position on overwrite, as does OrderedDictionary
    }

    private void Put(long index)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor)
            throw _input.Fail("memoizes from an empty stack");
        _memo[index] = _stack[^1];
    }

    private void Get(long index) =>
        Push(_memo.TryGetValue(index, out var value) ? value : throw _input.Fail($"memo has no entry {index}"));
}
