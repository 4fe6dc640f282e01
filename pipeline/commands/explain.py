"""Show which time steps made a checkpoint choose its class for each input (raw videos,
recordings or sequence files): integrated gradients over time and features, plus attention
weights with attention pooling. Writes a PNG and .npz per input and OUT/explain.csv."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.arguments import add_device_argument, add_workers_argument, count, output_folder
from pipeline.core.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="files, or folders of them")
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", type=output_folder, default="explain", help="folder to write")
    parser.add_argument("--target", help="class to explain (default: the predicted one)")
    parser.add_argument("--steps", type=count(1), default=32, help="integrated-gradient path steps")
    add_workers_argument(parser)
    add_device_argument(parser)


def run(ns: argparse.Namespace) -> None:
    from pipeline.apply.explain import explain

    results, failed = explain(
        ns.paths, ns.checkpoint, ns.out, target=ns.target, steps=ns.steps,
        num_workers=ns.num_workers, device=ns.device,
    )  # fmt: skip
    for path, reason in failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    if not results:
        raise UserError(f"none of {', '.join(map(str, ns.paths))} could be read.")
    print(f"explain: {len(results)} explained, {len(failed)} skipped -> {ns.out} "
          "(a .png and .npz per input, explain.csv)")  # fmt: skip
