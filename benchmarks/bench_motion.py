"""Video features with the defaults: what `extract` with no options gives, beside appearance
alone, on a task that motion decides and on one that appearance decides.

- **camera motion**: five camera motions (static, pan left/right, zoom in/out) film
  scikit-image photos; the test videos come from photos never seen in training
  (`seqclass sample-data camera-motion`).
- **scenes**: five scenes (brick, grass, gravel, galaxies, tissue), each filmed by a camera that
  stays still, pans or zooms at random; test videos film the half of each scene no training
  video saw (`seqclass sample-data scenes`).

Each feature set is written by `seqclass extract` (EfficientNet-Lite0, the offline backbone;
12 frames per video), then `seqclass fit --data.root FEATURES` with no other option trains and
`seqclass test` tests its best checkpoint, for each seed:

    python benchmarks/bench_motion.py [--seeds 3] [--config configs/camera_motion.yaml]
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
from pipeline.prepare.sample_data import make_camera_motion_dataset, make_scene_dataset

from common import machine

LITE0 = ["--backbone", "efficientnet_lite0"]
FEATURE_SETS = {
    "appearance alone (`--motion none`)": [*LITE0, "--motion", "none"],
    "**appearance + motion (the default)**": LITE0,
    "appearance projected to 64 + motion (`--projection 64`)": [*LITE0, "--projection", "64"],
    "motion alone (`--backbone none`)": ["--backbone", "none"],
}
TASKS = {"camera motion": make_camera_motion_dataset, "scenes": make_scene_dataset}


def test_accuracy(features: Path, runs: Path, seed: int, config: Path | None) -> float:
    """Fit on `features` (with `config`, or the defaults), test the best checkpoint, return
    the test accuracy."""
    common = [f"--data.root={features}", f"--trainer.default_root_dir={runs}",
              "--trainer.enable_progress_bar=false", f"--seed_everything={seed}",
              *([f"--config={config}"] if config else [])]  # fmt: skip
    seqclass(["fit", *common])
    seqclass(["test", *common, f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"])
    metrics = max(runs.glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(metrics.read_text())["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=24)
    parser.add_argument("--test-per-class", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per feature set")
    parser.add_argument("--config", type=Path, help="fit config (default: none, the defaults)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, make in TASKS.items():
            videos = make(Path(tmp) / task, args.train_per_class, args.test_per_class)
            for i, (name, options) in enumerate(FEATURE_SETS.items()):
                features = Path(tmp) / f"{task}-features{i}"
                start = time.perf_counter()
                seqclass(["extract", str(videos), "--out", str(features), "--sampling", "uniform",
                          "--sampling-value", "12", "--num-workers", str(args.workers), *options])  # fmt: skip
                seconds = time.perf_counter() - start
                settings = json.loads((features / "feature_settings.json").read_text())
                accuracy = [
                    test_accuracy(features, Path(tmp) / f"{task}-runs{i}_{seed}", seed, args.config)
                    for seed in range(args.seeds)
                ]
                rows.append((task, name, settings["feature_dim"], accuracy, seconds))
                print(f"{task} | {name}: {accuracy}", flush=True)
    print(f"\n{args.train_per_class} train / {args.test_per_class} test videos per class; "
          f"fit {'with ' + str(args.config) if args.config else 'with the defaults'}; "
          f"mean ± std over {args.seeds} seed(s); "
          f"{machine('cuda' if torch.cuda.is_available() else 'cpu')}\n\n"
          "| task | features | D | test accuracy | extraction (s) |\n"
          "| --- | --- | ---: | ---: | ---: |")  # fmt: skip
    for task, name, dim, accuracy, seconds in rows:
        print(f"| {task} | {name} | {dim} | {np.mean(accuracy):.3f} ± {np.std(accuracy):.3f} "
              f"| {seconds:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
