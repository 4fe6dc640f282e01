"""The default kernel features' cost per sample against the series' length, side by side in one
run: pooled a few samples at a time, so that each kernel output stays in the CPU's caches while
it is read once per bias (`pipeline.models.kernel_features.in_chunks`), against the whole batch
at once. Both give the same features; the default model (MiniRocket-style dilated kernels and
Hydra's counts) on 3 channels, batches of 16 as `fit` computes them.

    python benchmarks/bench_kernel_features.py [--lengths 300 2000 20000] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from pipeline.models import kernel_features
from pipeline.models.config import NetConfig
from pipeline.models.sequence_net import SequenceNet

from common import machine, sync


def seconds_per_sample(head: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> float:
    """Best of two timed passes of every part's pooled outputs, after one warm-up pass."""
    best = float("inf")
    for repeat in range(3):
        sync(str(x.device))
        start = time.perf_counter()
        head.pooled(x, lengths)
        sync(str(x.device))
        if repeat:
            best = min(best, time.perf_counter() - start)
    return best / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[300, 2000, 20000])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(machine(args.device))
    print(f"\nKernel features of the default model, 3 channels, batch {args.batch}\n\n"
          "| length | features | chunked s/sample | whole batch s/sample | speed-up |\n"
          "| ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
    chunked = dict(kernel_features.CHUNK_VALUES)
    for length in args.lengths:
        torch.manual_seed(0)
        net = SequenceNet(3, 4, NetConfig(), max_length=length).to(args.device).eval()
        x = torch.randn(args.batch, length, 3, device=args.device)
        lengths = torch.full((args.batch,), length, device=args.device)
        head = net.kernel_head
        with torch.no_grad():
            head.fit(x, lengths)
            times = {}
            for mode in ("chunked", "whole"):
                kernel_features.CHUNK_VALUES.update(
                    chunked if mode == "chunked" else dict.fromkeys(chunked, 2**62)
                )
                times[mode] = seconds_per_sample(head, x, lengths)
        kernel_features.CHUNK_VALUES.update(chunked)
        print(f"| {length:,} | {head.num_features:,} | {times['chunked']:.3f} | "
              f"{times['whole']:.3f} | {times['whole'] / times['chunked']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
