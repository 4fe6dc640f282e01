"""Test accuracy on synchronized video + vibration samples: each stream alone, all channels side
by side in one encoder, early and late fusion with and without stream dropout, and fused models
given one stream only.

The data is `seqclass sample-data fusion` (camera pan left/right x machine healthy/bearing
fault: neither stream alone can tell more than half of the four classes apart), with test
samples of their own seed. Videos become EfficientNet-Lite0 features (64 projected channels,
or all 1,280 in the last rows) beside DIS optical-flow motion descriptors (29), 6 frames/s;
vibration the chain of `configs/fusion/vibration.yaml` (4 channels). Every run is a new process
of the CLI, as a user runs it.

    python benchmarks/bench_fusion.py [--seeds 3] [--per-class 24] [--rows "late" ...]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_accuracy import fit_and_test, seqclass

from pipeline.prepare.sample_data import make_fusion_dataset

from common import machine

CHAIN = Path(__file__).resolve().parents[1] / "configs" / "fusion" / "vibration.yaml"
VIDEO = ["--backbone", "efficientnet_lite0", "--motion", "dis", "--sampling", "fps",
         "--sampling-value", "6"]  # fmt: skip
PROJECTED = ["--projection", "64"]  # appearance: 64 projected channels, or all 1,280 without
STREAMS = ("camera", "vibration")
# name -> (streams, projected appearance, extra fit options)
ROWS = {
    "video alone": (("camera",), True, []),
    "vibration alone": (("vibration",), True, []),
    "side by side, one encoder": (STREAMS, True, ["--model.fusion=none"]),
    "early": (STREAMS, True, ["--model.fusion=early", "--model.stream_dropout=0"]),
    "early + stream dropout": (STREAMS, True, ["--model.fusion=early"]),
    "late": (STREAMS, True, ["--model.fusion=late", "--model.stream_dropout=0"]),
    "late + stream dropout": (STREAMS, True, ["--model.fusion=late"]),
    "1,280-d appearance, side by side": (STREAMS, False, ["--model.fusion=none"]),
    "1,280-d appearance, late + stream dropout": (STREAMS, False, ["--model.fusion=late"]),
}


def keep_streams(data: Path, out: Path, streams: tuple[str, ...]) -> Path:
    """A copy of the sample tree (links) holding only `streams`' files."""
    for file in data.rglob("*.*"):
        if file.stem in streams:
            target = out / file.relative_to(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    return out


def classify_accuracy(test: Path, checkpoint: Path, out: Path) -> str:
    """Accuracy of `seqclass classify` on the raw test folders; "skipped" when the model
    takes no sample that lacks a stream (trained without stream dropout)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "classify", str(test), "--checkpoint", str(checkpoint),
         "--out", str(out)], capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode and "could be read" in done.stderr:
        return "skipped"
    if done.returncode:
        sys.exit(f"classify {test} failed:\n{done.stderr[-3000:]}")
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    return f"{sum(r['label'] == r['predicted'] for r in rows) / len(rows):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=24, help="training samples per class")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ns = parser.parse_args()
    print(f"# fusion benchmark: {machine('cpu')}", flush=True)
    results: dict[str, list[tuple[float, float, dict[str, str]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        make_fusion_dataset(data / "train", ns.per_class, seed=0)
        make_fusion_dataset(data / "test", max(2, ns.per_class // 3), seed=1)
        features = {}
        for streams, projected in {ROWS[row][:2] for row in ns.rows}:
            name = "+".join(streams) + ("" if projected else "-1280")
            tree = keep_streams(data, tmp / name, streams)
            features[streams, projected] = tmp / f"{name}-features"
            seqclass("extract", str(tree), "--out", str(features[streams, projected]), *VIDEO,
                     *(PROJECTED if projected else []), "--signal", str(CHAIN))  # fmt: skip
        one_stream = {s: keep_streams(data / "test", tmp / f"test-{s}", (s,)) for s in STREAMS}
        for row in ns.rows:
            streams, projected, options = ROWS[row]
            for seed in range(ns.seeds):
                out = tmp / "runs" / row.replace(" ", "_").replace(",", "") / str(seed)
                accuracy, seconds = fit_and_test(features[streams, projected], out, seed, options)
                given = {}
                if len(streams) > 1:
                    checkpoint = out / "checkpoints" / "best.ckpt"
                    given = {s: classify_accuracy(one_stream[s], checkpoint, out / f"{s}.csv")
                             for s in STREAMS}  # fmt: skip
                results.setdefault(row, []).append((accuracy, seconds, given))
                print(f"{row} seed {seed}: {accuracy:.3f} in {seconds:.0f} s; given one "
                      f"stream: {given}", flush=True)  # fmt: skip
    print(f"\n| model ({ns.seeds} seeds) | test accuracy | fit | camera only | vibration only |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row, runs in results.items():
        accuracies = [a for a, _, _ in runs]
        spread = f" ± {statistics.stdev(accuracies):.3f}" if len(runs) > 1 else ""
        seconds = statistics.mean(s for _, s, _ in runs)
        alone = [" / ".join(g[s] for _, _, g in runs) if runs[0][2] else "" for s in STREAMS]
        print(f"| {row} | {statistics.mean(accuracies):.3f}{spread} | {seconds:.0f} s | "
              f"{alone[0]} | {alone[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()
