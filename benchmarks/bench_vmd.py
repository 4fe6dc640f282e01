"""Batched torch VMD vs vmdpy, same signals and settings, one after the other in one run.

200 signals x 1000 samples (three random tones plus noise), K=5, alpha 2000, tau 0.01, vmdpy's
grid initialization and stopping rule (tol 1e-6). vmdpy runs at most 499 iterations and returns
the one before its last, so the torch run stops at 498. Prints signals/s of
each, the ratio, and the largest difference between the modes.

    python benchmarks/bench_vmd.py [--signals 200] [--length 1000] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from vmdpy import VMD

from feature_extractors.signal import vmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--modes", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t = np.arange(args.length) / 1000
    x = np.stack(
        [
            sum(np.cos(2 * np.pi * rng.uniform(1, 300) * t + rng.uniform(0, 6)) for _ in range(3))
            + 0.1 * rng.normal(size=args.length)
            for _ in range(args.signals)
        ]
    )
    settings = {"alpha": 2000.0, "tau": 0.01}
    start = time.perf_counter()
    reference = [VMD(xi, settings["alpha"], settings["tau"], args.modes, 0, 1, 1e-6) for xi in x]
    vmdpy_s = time.perf_counter() - start

    signal = torch.as_tensor(x, device=args.device)
    vmd(signal[:2], args.modes, **settings, init="grid", max_iterations=2)  # warm-up
    start = time.perf_counter()
    ours = vmd(
        signal, args.modes, **settings, init="grid", abs_tol=1e-6, rel_tol=None, max_iterations=498
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    torch_s = time.perf_counter() - start

    modes = ours.modes.cpu().numpy()
    diff = max(
        np.abs(modes[i] - ref[0][np.argsort(ref[2][-1])]).max() / np.abs(x[i]).max()
        for i, ref in enumerate(reference)
    )
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "-"
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads, GPU {gpu}; "
        f"{args.signals} signals x {args.length} samples, K={args.modes}, "
        f"mean iterations {ours.iterations.float().mean():.0f} (vmdpy "
        f"{np.mean([len(r[2]) for r in reference]):.0f})\n"
    )
    print("| implementation | signals/s | ratio |\n| --- | ---: | ---: |")
    print(f"| vmdpy (one signal at a time) | {args.signals / vmdpy_s:.1f} | 1.0 |")
    print(
        f"| batched torch, {args.device} | {args.signals / torch_s:.1f} | {vmdpy_s / torch_s:.1f} |"
    )
    print(f"\nlargest mode difference: {diff:.2e} of the signal's peak")


if __name__ == "__main__":
    main()
