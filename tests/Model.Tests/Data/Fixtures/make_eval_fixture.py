#!/usr/bin/python3
"""Writes the eval-transform fixture: a few small images and what torchvision + PIL make of them.

The predecessor's profiling transform (spec §5.2) is timm's eval transform on PIL images:
Resize(floor(size / crop_pct), BICUBIC) on the shorter side, CenterCrop(size), ToTensor,
Normalize(mean, std). This script runs exactly that with torchvision's own transforms, so the
C# EvalTransform is checked against the real thing rather than against a re-derivation.

Run with Debian's python3 (python3-pil, python3-numpy, python3-torchvision; the pyenv python3
on PATH lacks them):
    /usr/bin/python3 make_eval_fixture.py
"""
import json
import os
import struct

import numpy as np
from PIL import Image
from torchvision import transforms as T

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(3407)


def texture(h, w):
    # Smooth gradients plus noise: both the low-pass and the ringing of bicubic are exercised.
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255.0 * x / (w - 1)
    b = 255.0 * (y / (h - 1)) ** 2
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 20, size=(h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


images = {
    "texture.png": Image.fromarray(texture(67, 90), "RGB"),  # downscale by ~1.9
    "small.png": Image.fromarray(texture(20, 30), "RGB"),  # upscale by 1.75
    "gray.png": Image.fromarray(texture(50, 40)[:, :, 0], "L"),
}
rgba = np.concatenate([texture(40, 40), rng.randint(0, 256, size=(40, 40, 1)).astype(np.uint8)], axis=-1)
rgba[:5, :5, 3] = 0  # fully transparent pixels keep their colour: decoders must not premultiply
images["rgba.png"] = Image.fromarray(rgba, "RGBA")
for name, image in images.items():
    image.save(os.path.join(HERE, name))
Image.fromarray(texture(67, 90), "RGB").save(os.path.join(HERE, "photo.jpg"), quality=90)


def eval_transform(size, crop_pct, mean, std):
    scale_size = int(np.floor(size / crop_pct))  # timm transforms_imagenet_eval
    return T.Compose([
        T.Resize(scale_size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


predecessor = eval_transform(32, 0.9, [0.5] * 3, [0.5] * 3)
imagenet = eval_transform(24, 0.875, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
gray1 = eval_transform(32, 0.9, [0.5], [0.5])


def load(name, mode="RGB"):
    # torchvision's ImageFolder loader: open, convert to RGB.
    with open(os.path.join(HERE, name), "rb") as f:
        return Image.open(f).convert(mode)


cases = {
    "texture_pred32": predecessor(load("texture.png")),
    "small_pred32": predecessor(load("small.png")),
    "gray_pred32": predecessor(load("gray.png")),
    "rgba_pred32": predecessor(load("rgba.png")),
    "photo_pred32": predecessor(load("photo.jpg")),
    "texture_imagenet24": imagenet(load("texture.png")),
    "texture_L_pred32": gray1(load("texture.png", "L")),
}
tensors = [(k, v.numpy().astype("<f4")) for k, v in cases.items()]
tensors.append(("photo_decoded", np.asarray(load("photo.jpg"), dtype=np.uint8)))

# RandomResizedCrop's resize on PIL images: crop(box) then resize(size, BICUBIC), 8-bit out. The names carry
# left, top, width, height, output width and height: shrinking, enlarging, both at once, a 1-pixel box, no resize.
CROPS = [(5, 7, 60, 50, 24, 24), (30, 20, 9, 12, 40, 40), (0, 0, 90, 67, 33, 100), (44, 33, 1, 1, 5, 3),
         (10, 10, 40, 30, 40, 30), (3, 2, 80, 60, 80, 17)]
for left, top, width, height, out_w, out_h in CROPS:
    cropped = load("texture.png").crop((left, top, left + width, top + height)).resize((out_w, out_h), Image.BICUBIC)
    tensors.append((f"crop_{left}_{top}_{width}_{height}_to_{out_w}_{out_h}", np.asarray(cropped, dtype=np.uint8)))

header, data = {"__metadata__": {"written_by": "make_eval_fixture.py"}}, b""
for name, array in tensors:
    raw = array.tobytes()
    dtype = "F32" if array.dtype == np.float32 else "U8"
    header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
header_bytes += b" " * (-(8 + len(header_bytes)) % 8)
out = os.path.join(HERE, "eval_transform_expected.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
print(f"wrote {out} and {len(images) + 1} images")
