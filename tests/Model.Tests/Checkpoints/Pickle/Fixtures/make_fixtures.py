#!/usr/bin/python3
"""Writes the torch.save fixtures read by the Pickle tests, with Debian's PyTorch (1.13).

Run with Debian's python3 (the python3 on PATH has no torch):
    /usr/bin/python3 make_fixtures.py

Files written next to this script:
  vit_micro_state_dict.pth   torch.save(state_dict) of a tiny ViT with timm's key names
  vit_micro.safetensors      the same tensors, written by hand (the expected values)
  wrapped.pth                {'model': state_dict with 'module.' keys, 'epoch': 3, 'optimizer_name': 'adamw'}
  dtypes.pth                 every dtype, a 0-d tensor, a transposed tensor, views of one storage, a Parameter
  dtypes_protocol4.pth       the same saved with pickle_protocol=4
  malicious.pth              a zip whose data.pkl calls os.system (hand-assembled; never loaded here)
  malicious_eval.pth         the same with builtins.eval, through STACK_GLOBAL (protocol 4)
  truncated.pth              the first half of vit_micro_state_dict.pth
  legacy.pth                 torch.save(..., _use_new_zipfile_serialization=False) (its storage key is
                             a memory address, so only this file differs between runs)
  torchscript.pt             torch.jit.save of a tiny module (not a state dict)

The malicious pickles are assembled from opcodes so that their bytes are explicit; loading
them with Python's pickle WOULD run the shell command, so nothing here ever loads them.
"""
import collections
import json
import os
import struct
import zipfile

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))

# Marker files the malicious pickles would create; the C# tests assert they never appear.
SYSTEM_MARKER = "/tmp/jetpack-pickle-pwned-system"
EVAL_MARKER = "/tmp/jetpack-pickle-pwned-eval"


def path(name):
    return os.path.join(HERE, name)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)


class VitMicro(nn.Module):
    """Only the parameters matter: the module tree reproduces timm's VisionTransformer keys."""

    def __init__(self, dim=8, depth=2, classes=4, image=8, patch=4):
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.patch_embed = PatchEmbed(dim, patch)
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)


def write_safetensors(file, tensors):
    """The format by hand: u64 LE header length, JSON header, raw little-endian bytes."""
    names = {torch.float32: "F32"}
    header, data = {}, b""
    for name, t in tensors.items():
        raw = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-(8 + len(header_bytes)) % 8)
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


def write_archive(file, prefix, pickle_bytes):
    """A torch.save-shaped zip (stored entries) around a hand-made data.pkl, with no storages."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in ((f"{prefix}/data.pkl", pickle_bytes), (f"{prefix}/version", b"3\n")):
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)  # fixed time: reruns are byte-identical


def unicode(text):
    """BINUNICODE: 'X', u32 LE byte length, UTF-8 bytes."""
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def short_unicode(text):
    """SHORT_BINUNICODE (protocol 4): 0x8c, u8 byte length, UTF-8 bytes."""
    raw = text.encode("utf-8")
    return b"\x8c" + struct.pack("<B", len(raw)) + raw


def malicious_system():
    # {'weight': os.system('echo pwned > MARKER')} in protocol 2, with a text GLOBAL.
    return (b"\x80\x02"                      # PROTO 2
            + b"}"                           # EMPTY_DICT
            + unicode("weight")
            + b"cos\nsystem\n"               # GLOBAL os.system
            + unicode(f"echo pwned > {SYSTEM_MARKER}")
            + b"\x85"                        # TUPLE1
            + b"R"                           # REDUCE: would call os.system(...)
            + b"s"                           # SETITEM
            + b".")                          # STOP


def malicious_eval():
    # {'weight': builtins.eval("...")} in protocol 4, with STACK_GLOBAL and a FRAME.
    body = (b"}"
            + short_unicode("weight")
            + short_unicode("builtins") + short_unicode("eval")
            + b"\x93"                        # STACK_GLOBAL builtins.eval
            + unicode(f"__import__('os').system('echo pwned > {EVAL_MARKER}')")
            + b"\x85" + b"R" + b"s" + b".")
    return b"\x80\x04" + b"\x95" + struct.pack("<Q", len(body)) + body


class Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x)


def main():
    torch.manual_seed(0)
    state = VitMicro().state_dict()
    torch.save(state, path("vit_micro_state_dict.pth"))
    write_safetensors(path("vit_micro.safetensors"), state)

    wrapped = collections.OrderedDict(("module." + k, v) for k, v in state.items())
    torch.save({"model": wrapped, "epoch": 3, "optimizer_name": "adamw"}, path("wrapped.pth"))

    a = torch.arange(12.0).reshape(3, 4)
    dtypes = {
        "f16": torch.tensor([1.5, -2.0, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0, 0.5], dtype=torch.bfloat16),
        "f64": torch.tensor([1e300, -0.0, 2.5], dtype=torch.float64),
        "i64": torch.tensor([0, -1, 2**40, 2**63 - 1], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 7], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.5),
        "transposed": torch.arange(6.0).reshape(2, 3).t(),
        "a": a,
        "row": a[1],
        "col": a[:, 2],
        "param": nn.Parameter(torch.tensor([[0.25, -0.5]])),
    }
    torch.save(dtypes, path("dtypes.pth"))
    # Protocol 4 (torch.save's pickle_protocol): FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL.
    torch.save(dtypes, path("dtypes_protocol4.pth"), pickle_protocol=4)

    write_archive(path("malicious.pth"), "malicious", malicious_system())
    write_archive(path("malicious_eval.pth"), "malicious_eval", malicious_eval())

    with open(path("vit_micro_state_dict.pth"), "rb") as f:
        whole = f.read()
    with open(path("truncated.pth"), "wb") as f:
        f.write(whole[: len(whole) // 2])

    torch.save({"w": torch.ones(2)}, path("legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(Scripted()), path("torchscript.pt"))

    for name in sorted(os.listdir(HERE)):
        print(f"{os.path.getsize(path(name)):8d}  {name}")


if __name__ == "__main__":
    main()
