namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// The pickle opcodes the restricted unpickler executes: the subset of protocols 2–5 that
/// torch.save emits for a state dict (and that Python's pickler emits for plain containers at
/// those protocols). Byte values are those of the pickle format (CPython's pickletools documents
/// each). Every other byte — text-protocol opcodes, INST/OBJ, EXT*, PERSID, bytes and sets — is
/// refused as unsupported: none of them is needed to describe tensors.
/// </summary>
internal enum PickleOpcode : byte
{
    Mark = (byte)'(',
    Stop = (byte)'.',
    BinInt = (byte)'J',        // 4-byte signed little-endian
    BinInt1 = (byte)'K',       // 1-byte unsigned
    BinInt2 = (byte)'M',       // 2-byte unsigned little-endian
    None = (byte)'N',
    BinPersId = (byte)'Q',     // persistent id popped from the stack (torch: storages)
    Reduce = (byte)'R',
    BinString = (byte)'T',     // 4-byte signed length (Python 2 str)
    ShortBinString = (byte)'U',
    BinUnicode = (byte)'X',    // 4-byte unsigned length, UTF-8
    EmptyList = (byte)']',
    Append = (byte)'a',
    Build = (byte)'b',
    Global = (byte)'c',        // "module\nname\n"
    Dict = (byte)'d',
    EmptyDict = (byte)'}',
    Appends = (byte)'e',
    BinGet = (byte)'h',
    LongBinGet = (byte)'j',
    List = (byte)'l',
    BinPut = (byte)'q',
    LongBinPut = (byte)'r',
    SetItem = (byte)'s',
    Tuple = (byte)'t',
    EmptyTuple = (byte)')',
    SetItems = (byte)'u',
    BinFloat = (byte)'G',      // 8-byte big-endian IEEE double
    Proto = 0x80,
    NewObj = 0x81,
    Tuple1 = 0x85,
    Tuple2 = 0x86,
    Tuple3 = 0x87,
    NewTrue = 0x88,
    NewFalse = 0x89,
    Long1 = 0x8a,              // 1-byte length, little-endian two's complement
    ShortBinUnicode = 0x8c,    // protocol 4
    BinUnicode8 = 0x8d,        // protocol 4, 8-byte length
    Memoize = 0x94,            // protocol 4: memo[len(memo)] = top
    Frame = 0x95,              // protocol 4: 8-byte frame length, a read-ahead hint only
    StackGlobal = 0x93,        // protocol 4: module and name popped from the stack
}
