#!/usr/bin/python3
"""Writes python_written.safetensors by hand, independently of the C# writer.

The format (https://github.com/huggingface/safetensors#format): an 8-byte little-endian
header length N, N bytes of JSON, then raw little-endian tensor data. Only struct, json and
numpy are used, so the C# reader is checked against a second implementation of the spec.

Run with Debian's python3 (numpy is not in the pyenv python3 on PATH):
    /usr/bin/python3 make_fixture.py
"""
import json
import os
import struct

import numpy as np

# Data order deliberately differs from header order: readers must follow data_offsets.
tensors = [
    ("weight", "F32", np.array([[1.5, -2.0, 3.25], [0.0, -0.0, 1e-3]], dtype="<f4")),
    ("ids", "I64", np.array([0, -1, 2**40, 2**63 - 1], dtype="<i8")),
    # bfloat16 has no numpy dtype: raw bit patterns for 1.0 and -3.0.
    ("bf16", "BF16", np.array([0x3F80, 0xC040], dtype="<u2")),
    ("pixels", "U8", np.array([0, 128, 255], dtype="u1")),
    ("mask", "BOOL", np.array([[True, False], [False, True]], dtype="?")),
]
metadata = {"format": "pt", "written_by": "make_fixture.py"}

header = {"__metadata__": metadata}
data = b""
for name, dtype, array in tensors:
    raw = array.tobytes()
    header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw

# Header keys in reverse order of the data, to exercise offset ordering.
ordered = {"__metadata__": metadata}
for name, _, _ in reversed(tensors):
    ordered[name] = header[name]
header_bytes = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
header_bytes += b" " * (-(8 + len(header_bytes)) % 8)  # pad so the data starts 8-aligned

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_written.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(header_bytes)))
    f.write(header_bytes)
    f.write(data)
print(f"wrote {out}: {8 + len(header_bytes) + len(data)} bytes")
