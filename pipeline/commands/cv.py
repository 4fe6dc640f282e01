"""Stratified k-fold cross-validation: one model per fold, each validated on its held-out
fold; per-fold metrics, their mean and standard deviation in OUT/cv.json and OUT/cv.png.
Other options (--config, --model.*, --data.*, --trainer.*) are those of `seqclass fit`."""

from __future__ import annotations

import argparse

from pipeline.core.arguments import count, output_folder

FIT_OPTIONS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--folds", type=count(2), default=5, help="folds, each held out once (default 5)"
    )
    parser.add_argument(
        "--out", type=output_folder,
        help="folder to write (default: RUN/cv, RUN being the fit options' "
        "--trainer.default_root_dir, runs by default)",
    )  # fmt: skip


def run(ns: argparse.Namespace) -> None:
    from pipeline.core.distributed import rank_and_world
    from pipeline.training.cross_validation import cross_validate

    summary, path = cross_validate(ns.fit_args, ns.folds, ns.out)
    if rank_and_world()[0] != 0:  # under DDP every process trains; the first one reports
        return
    print(f"cv: {ns.folds} folds -> {path}")
    for metric, mean in summary["mean"].items():
        print(f"  {metric}: {mean:.4f} ± {summary['std'][metric]:.4f}")
