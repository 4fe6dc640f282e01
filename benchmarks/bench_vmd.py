"""Batched torch VMD vs vmdpy, same signals and settings, one after the other in one run.

200 signals x 1000 samples (three random tones plus noise), K=5, alpha 2000, tau 0.01, vmdpy's
grid initialization and stopping rule (tol 1e-6). vmdpy runs at most 499 iterations and returns
the one before its last, so the torch runs stop at 498. Torch runs: float64 eager, float64 and
float32 with `compile=True` (compilation happens in a warm-up call, outside the timing). Prints
signals/s of each, the ratios, and the largest difference between the modes.

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
    runs = {}  # name -> (seconds, result)
    for name, options in (
        ("float64", {}),
        ("float64, compiled", {"compile": True}),
        ("float32, compiled", {"compile": True, "dtype": torch.float32}),
    ):
        settings_run = {**settings, **options, "init": "grid", "rel_tol": None}
        vmd(signal[:2], args.modes, **settings_run, max_iterations=3)  # warm-up / compile
        vmd(signal[:3], args.modes, **settings_run, max_iterations=3)  # dynamic-shape compile
        start = time.perf_counter()
        result = vmd(signal, args.modes, **settings_run, abs_tol=1e-6, max_iterations=498)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        runs[name] = (time.perf_counter() - start, result)

    def difference(result) -> float:
        modes = result.modes.cpu().double().numpy()
        return max(
            np.abs(modes[i] - ref[0][np.argsort(ref[2][-1])]).max() / np.abs(x[i]).max()
            for i, ref in enumerate(reference)
        )

    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "-"
    ours = runs["float64"][1]
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads, GPU {gpu}; "
        f"{args.signals} signals x {args.length} samples, K={args.modes}, "
        f"mean iterations {ours.iterations.float().mean():.0f} (vmdpy "
        f"{np.mean([len(r[2]) for r in reference]):.0f})\n"
    )
    print("| implementation | signals/s | ratio | largest mode difference vs vmdpy |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| vmdpy (one signal at a time) | {args.signals / vmdpy_s:.1f} | 1.0 | - |")
    for name, (seconds, result) in runs.items():
        print(
            f"| batched torch, {args.device}, {name} | {args.signals / seconds:.1f} | "
            f"{vmdpy_s / seconds:.1f} | {difference(result):.1e} |"
        )
    print("\n(mode differences are relative to each signal's peak)")


if __name__ == "__main__":
    main()
