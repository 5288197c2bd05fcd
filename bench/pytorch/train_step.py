#!/usr/bin/python3
"""PyTorch peer for the training-step benchmark: time one V-JetMoE-T (or ViT-Ti) step on CPU.

Usage (Debian's interpreter, torch 1.13 + OpenBLAS):
    /usr/bin/python3 bench/pytorch/train_step.py [--model vjetmoe_t|vit_tiny] [--batch 8]
        [--image-size 224] [--steps 20] [--warmup 3] [--threads 2]

One step = zero_grad + forward + label-smoothed cross-entropy (0.1) + backward + AdamW step
(lr 1e-3, weight decay 0.05), in train mode: block drop path 0.1, expert dropout 0.4, MoE
DropPath linspace(0, 0.1, 12)[layer], routing noise on (spec 3.2, 7.2). Random images and
labels are made once, before timing. Prints exactly one JSON line on stdout; progress goes to
stderr. Besides the agreed fields, the line carries step_seconds_min and the 1-minute load
average at the start, because on a shared 2-core machine other processes inflate the median.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "golden"))
import jetpack_ref as ref  # noqa: E402


def build(name, image_size):
    if name == "vjetmoe_t":
        return ref.vjetmoe_t(num_classes=1000, drop_path_rate=0.1, expert_drop=0.4,
                             moe_drop_path_rate=0.1, use_noise=True, img_size=image_size)
    if name == "vit_tiny":
        return ref.vit_tiny(num_classes=1000, drop_path_rate=0.1, img_size=image_size)
    raise ValueError(name)


def main():
    parser = argparse.ArgumentParser(description="time a training step (PyTorch peer)")
    parser.add_argument("--model", choices=["vjetmoe_t", "vit_tiny"], default="vjetmoe_t")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build(args.model, args.image_size).train()
    params = ref.count_params(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size)
    labels = torch.randint(0, 1000, (args.batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
        loss.backward()
        optimizer.step()
        return float(loss)

    load_before = os.getloadavg()[0]   # the machine is shared: record how busy it was
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = step()
        elapsed = time.perf_counter() - start
        timed = i >= args.warmup
        if timed:
            times.append(elapsed)
        print(f"step {i} ({'timed' if timed else 'warmup'}): {elapsed:.3f} s, loss {loss:.4f}",
              file=sys.stderr, flush=True)

    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "model": args.model,
        "batch": args.batch, "image_size": args.image_size, "threads": args.threads,
        "params": params, "step_seconds_median": statistics.median(times),
        "step_seconds_mean": statistics.fmean(times), "steps": len(times),
        "step_seconds_min": min(times), "load_average_1min": load_before,
    }))


if __name__ == "__main__":
    main()
