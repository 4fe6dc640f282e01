"""Peak memory of a default `seqclass fit` against the data set's size, side by side in one run.

N short synthetic samples (4 classes, 3 channels, 24-40 steps, `.npy` files) are fitted for
one epoch with the default model, each size in a fresh process: the peak resident memory of
that process (and on a GPU, the peak device memory torch allocated). The kernel features
are kept for every sample (`pipeline/training/kernel_memo.py`): in memory up to 256 MB a split,
on disk beyond, so memory should stay nearly flat as N grows.

    python benchmarks/bench_memory.py [--sizes 10000 100000] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import machine

CLASSES = ("a", "b", "c", "d")


def write_samples(root: Path, count: int, seed: int = 0) -> Path:
    """`count` samples `ROOT/<class>/<i>.npy`: noise whose mean tells the class."""
    rng = np.random.default_rng(seed)
    for k, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(k, count, len(CLASSES)):
            steps = int(rng.integers(24, 41))
            np.save(root / label / f"{i}.npy", rng.normal(k * 0.2, 1, (steps, 3)).astype("f4"))
    return root


def fit_once(root: str, out: str, device: str) -> None:
    """One default epoch (the child's side): prints its peak memory as JSON."""
    from pipeline.cli import main

    preset = Path(__file__).resolve().parents[1] / "configs" / "trainer" / "gpu.yaml"
    trainer = [f"--trainer={preset}"] if device != "cpu" else []
    main(["fit", f"--data.root={root}", "--trainer.max_epochs=1", *trainer,
          "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={out}"])  # fmt: skip
    peak_gpu = torch.cuda.max_memory_allocated() if device != "cpu" else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rss": rss, "gpu": peak_gpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fit_once(*args.child, args.device)
        return
    print(machine(args.device))
    print("\n| samples (70% train) | peak host memory (MB) | peak GPU memory (MB) | fit seconds |")
    print("| ---: | ---: | ---: | ---: |")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = write_samples(Path(tmp) / str(size), size)
            start = time.perf_counter()
            child = subprocess.run(
                [sys.executable, __file__, "--device", args.device, "--child", str(root),
                 str(Path(tmp) / f"run{size}")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            peak = json.loads(child.stdout.strip().splitlines()[-1])
            first = first or peak["rss"]
            gpu = f"{peak['gpu'] / 2**20:.0f}" if args.device != "cpu" else "-"
            print(f"| {size:,} | {peak['rss'] / 2**20:.0f} ({peak['rss'] / first:.2f}x) | {gpu} | "
                  f"{seconds:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
