"""Classify raw videos (or sequence files) with a checkpoint from `seqclass fit`.

The decoding, frame sampling, backbone and normalization the model was trained with are read
from the checkpoint and applied again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.arguments import add_device_argument, add_workers_argument, count, output_file
from pipeline.core.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="files, or folders of them")
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", type=output_file, default="predictions.csv", help="CSV to write")
    parser.add_argument(
        "--batch-size", type=count(1), help="frames per CNN batch (default: 64 on CUDA, 8 on CPU)"
    )
    add_workers_argument(parser)
    add_device_argument(parser)


def run(ns: argparse.Namespace) -> None:
    from pipeline.apply.classify import classify
    from pipeline.training.reports import write_predictions, write_step_predictions

    result = classify(
        ns.paths, ns.checkpoint, batch_size=ns.batch_size, num_workers=ns.num_workers,
        device=ns.device,
    )  # fmt: skip
    for path, reason in result.failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    if not result.samples:
        raise UserError(f"none of {', '.join(map(str, ns.paths))} could be read.")
    summary = (
        f"classify: {len(result.samples)} classified, {len(result.failed)} skipped -> {ns.out}"
    )
    if isinstance(result.probs, list):  # a label per time step
        write_step_predictions(
            ns.out,
            result.samples,
            result.probs,
            class_names=result.class_names,
            times=result.times,
            step_labels={},
        )
        print(summary + " (a row per time step)")
        return
    write_predictions(
        ns.out, result.samples, result.probs, class_names=result.class_names, streams=result.streams
    )
    labels = [s.label for s in result.samples]
    if all(label in result.class_names for label in labels):
        hits = sum(p == t for p, t in zip(result.predicted, labels, strict=True))
        summary += f" (accuracy {hits / len(labels):.4f} against the class folders)"
    print(summary)
