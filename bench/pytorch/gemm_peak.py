#!/usr/bin/python3
"""Measured fp32 GEMM throughput of this machine's torch/BLAS, as a yardstick for the step times.

Usage: /usr/bin/python3 bench/pytorch/gemm_peak.py [--threads 2] [--size 2048] [--repeats 10]
Prints one JSON line: median GFLOP/s of C = A @ B with n x n float32 matrices (2 n^3 flops).
"""
import argparse
import json
import statistics
import time

import torch


def main():
    parser = argparse.ArgumentParser(description="fp32 GEMM GFLOP/s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    n = args.size
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)                     # warm-up: thread pool, page faults
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "threads": args.threads,
        "size": n, "repeats": args.repeats, "gflops_median": statistics.median(rates),
        "gflops_max": max(rates),
    }))


if __name__ == "__main__":
    main()
