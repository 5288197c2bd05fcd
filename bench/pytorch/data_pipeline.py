#!/usr/bin/python3
"""PyTorch peer for `jetpack bench data`: images/s of torchvision ImageFolder + PIL + DataLoader.

Usage (Debian's interpreter, torchvision 0.14 + Pillow):
    /usr/bin/python3 bench/pytorch/data_pipeline.py --root DIR/train [--workers 2] [--size 224]
        [--batch 32] [--seconds 10] [--mode train|train_ra|eval]

The transforms are jetpack's: train = RandomResizedCrop(size, bicubic) + RandomHorizontalFlip
(+ RandAugment(2, 9) for train_ra) + ToTensor + Normalize(ImageNet); eval = Resize(size/0.875,
bicubic) + CenterCrop(size) + ToTensor + Normalize. The DataLoader runs `--workers` worker
processes (0 = in the main process), torch.set_num_threads(1) in each, shuffle on, batches
collated; the first two batches are warm-up. Undecodable files are skipped by a loader that
returns None (collate drops them), as jetpack skips them. Prints one JSON line on stdout.
"""
import argparse
import json
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def safe_loader(path):
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except Exception:  # truncated, empty, not an image: skipped like jetpack does
        return None


class SkippingFolder(datasets.ImageFolder):
    def __getitem__(self, index):
        path, target = self.samples[index]
        img = self.loader(path)
        if img is None:
            return None
        return self.transform(img), target


def collate(batch):
    batch = [b for b in batch if b is not None]
    return torch.utils.data.default_collate(batch)


def build(mode, size):
    bicubic = transforms.InterpolationMode.BICUBIC
    tail = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    if mode == "eval":
        return transforms.Compose([transforms.Resize(int(size / 0.875), interpolation=bicubic),
                                   transforms.CenterCrop(size)] + tail)
    ops = [transforms.RandomResizedCrop(size, interpolation=bicubic), transforms.RandomHorizontalFlip()]
    if mode == "train_ra":
        ops.append(transforms.RandAugment(num_ops=2, magnitude=9, interpolation=bicubic))
    return transforms.Compose(ops + tail)


def init_worker(_):
    torch.set_num_threads(1)


def main():
    parser = argparse.ArgumentParser(description="torchvision ImageFolder + DataLoader images/s")
    parser.add_argument("--root", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mode", choices=["train", "train_ra", "eval"], default="train")
    args = parser.parse_args()

    torch.set_num_threads(1)
    dataset = SkippingFolder(args.root, transform=build(args.mode, args.size), loader=safe_loader)
    loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        collate_fn=collate, worker_init_fn=init_worker if args.workers > 0 else None,
                        persistent_workers=args.workers > 0, drop_last=False)
    images, start, warm = 0, None, 0
    while start is None or time.perf_counter() - start < args.seconds:
        for x, _ in loader:
            warm += 1
            if warm == 2:
                start = time.perf_counter()
            elif warm > 2:
                images += x.shape[0]
            if start is not None and time.perf_counter() - start >= args.seconds:
                break
    elapsed = time.perf_counter() - start
    cores = max(1, args.workers)
    print(json.dumps({"framework": "pytorch", "mode": args.mode, "workers": args.workers,
                      "images": images, "seconds": elapsed, "images_per_s": images / elapsed,
                      "images_per_s_per_core": images / elapsed / cores,
                      "torchvision": __import__("torchvision").__version__,
                      "load_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
