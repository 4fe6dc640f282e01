"""Camera-motion classification: appearance features against motion descriptors, side by side.

Five camera motions (static, pan left/right, zoom in/out) film scikit-image photos; the test
videos come from photos never seen in training (`seqclass sample-data camera-motion`). Each
feature set is extracted with `seqclass extract`, then the same BiLSTM
(`configs/camera_motion.yaml`) is trained and tested on it with `seqclass fit` / `test`:

1. appearance, globally pooled EfficientNet-Lite0 (1280-d): MATLAB's GoogLeNet + BiLSTM recipe;
2. appearance, 3×3 grid of the last feature map, projected to 64 channels per cell (576-d);
3. motion alone: DIS optical-flow descriptors (29-d);
4. appearance (1280-d) + motion, concatenated;
5. appearance projected to 64 channels + motion (93-d).

    python benchmarks/bench_motion.py [--train-per-class 24] [--test-per-class 8] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.cli import main as seqclass
from pipeline.prepare.sample_data import make_camera_motion_dataset

from common import machine

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "camera_motion.yaml"
LITE0 = ["--backbone", "efficientnet_lite0"]
MOTION = ["--motion", "dis"]
FEATURE_SETS = {
    "appearance, global (Lite0)": LITE0,
    "appearance, 3x3 grid, 64 ch/cell": [*LITE0, "--grid", "3", "--projection", "64"],
    "motion alone (DIS flow)": ["--backbone", "none", *MOTION],
    "appearance global + motion": [*LITE0, *MOTION],
    "appearance projected to 64 + motion": [*LITE0, "--projection", "64", *MOTION],
}


def test_accuracy(features: Path, runs: Path, seed: int) -> float:
    """Fit the benchmark's BiLSTM on `features`, test its best checkpoint, return accuracy."""
    common = [f"--config={CONFIG}", f"--data.root={features}", f"--trainer.default_root_dir={runs}",
              "--trainer.enable_progress_bar=false", f"--seed_everything={seed}"]  # fmt: skip
    seqclass(["fit", *common])
    seqclass(["test", *common, f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"])
    metrics = max(runs.glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(metrics.read_text())["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=24)
    parser.add_argument("--test-per-class", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per feature set")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_camera_motion_dataset(
            Path(tmp) / "videos", args.train_per_class, args.test_per_class
        )
        for i, (name, options) in enumerate(FEATURE_SETS.items()):
            features = Path(tmp) / f"features{i}"
            start = time.perf_counter()
            seqclass(["extract", str(videos), "--out", str(features), "--sampling", "uniform",
                      "--sampling-value", "12", "--num-workers", str(args.workers), *options])  # fmt: skip
            seconds = time.perf_counter() - start
            dim = json.loads((features / "feature_settings.json").read_text())["feature_dim"]
            accuracy = [
                test_accuracy(features, Path(tmp) / f"runs{i}_{seed}", seed)
                for seed in range(args.seeds)
            ]
            rows.append((name, dim, np.mean(accuracy), np.std(accuracy), seconds))
    print(f"\nCamera motion, 5 classes, {args.train_per_class} train / {args.test_per_class} test "
          f"videos per class, test photos unseen in training; {args.seeds} seed(s); "
          f"{machine('cuda' if torch.cuda.is_available() else 'cpu')}\n\n"
          "| features | D | test accuracy | extraction (s) |\n| --- | ---: | ---: | ---: |")  # fmt: skip
    for name, dim, mean, std, seconds in rows:
        spread = f" ± {std:.3f}" if args.seeds > 1 else ""
        print(f"| {name} | {dim} | {mean:.3f}{spread} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
