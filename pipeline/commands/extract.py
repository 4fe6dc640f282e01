"""Encode every video under ROOT into a [T, D] per-frame feature file under OUT: CNN
features, optical-flow motion descriptors, or both side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from feature_extractors.video import (
    DEFAULT_BACKBONE,
    FrameSampling,
    MotionSettings,
    WeightsUnavailableError,
)
from pipeline.data.sequence_files import SequenceDataError
from pipeline.distributed import rank_and_world, run_on_ranks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="video file, or folder of <class>/<video> files")
    parser.add_argument("--out", type=Path, required=True, help="feature folder to write")
    cnn = parser.add_argument_group("appearance: a pretrained CNN on every sampled frame")
    cnn.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help="torchvision model name, efficientnet_lite0 (offline), or 'none' (motion alone)",
    )
    cnn.add_argument(
        "--weights", default="DEFAULT", help="weights enum entry, or 'random' (untrained)"
    )
    cnn.add_argument("--weights-path", help="local state-dict file instead of the torch hub cache")
    cnn.add_argument(
        "--layer", help="graph node to take features from (default: pooled, before the classifier)"
    )
    cnn.add_argument(
        "--grid", type=int, default=1,
        help="pool the last feature map to GRID x GRID cells instead of globally (keeps where "
        "things are)",
    )  # fmt: skip
    cnn.add_argument(
        "--projection", type=int,
        help="keep this many channels per cell, through a fixed random orthonormal projection",
    )  # fmt: skip
    flow = parser.add_argument_group("motion: optical flow between consecutive sampled frames")
    flow.add_argument(
        "--motion", default="none", choices=["none", "dis", "farneback"],
        help="add per-cell mean flow, flow magnitude, divergence (zoom) and curl (rotation)",
    )  # fmt: skip
    flow.add_argument("--motion-grid", type=int, default=3, help="cells per side of the flow grid")
    flow.add_argument(
        "--motion-width", type=int, default=160, help="frame width the flow is computed at"
    )
    frames = parser.add_argument_group("frame sampling")
    frames.add_argument("--sampling", default="all", choices=["all", "every", "uniform", "fps"])
    frames.add_argument(
        "--sampling-value", type=float, help="k (every), N (uniform) or frames/s (fps)"
    )
    frames.add_argument("--max-frames", type=int, help="keep at most this many frames per video")
    parser.add_argument(
        "--batch-size", type=int, help="frames per CNN batch (default: 64 on CUDA, 8 on CPU)"
    )
    parser.add_argument("--num-workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--devices", type=int, default=1,
        help="processes to shard the videos over (one per GPU with --device cuda); under "
        "torchrun, one per launched process",
    )  # fmt: skip


def run(ns: argparse.Namespace) -> None:
    if ns.backbone == "none" and ns.motion == "none":
        raise SequenceDataError("--backbone none needs --motion dis or farneback")
    if ns.sampling == "all" and ns.sampling_value is not None:
        raise SequenceDataError(
            f"--sampling-value {ns.sampling_value} needs --sampling every, uniform or fps; the "
            "default, all, keeps every frame."
        )
    try:
        FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
        if ns.motion != "none":
            MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    except ValueError as err:
        raise SequenceDataError(str(err)) from None
    run_on_ranks(_extract_on_rank, ns.devices, ns)


def _extract_on_rank(ns: argparse.Namespace) -> None:
    from feature_extractors.video import build_backbone
    from pipeline.extract import extract_videos

    sampling = FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
    motion = (
        None if ns.motion == "none" else MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    )
    try:
        backbone = None if ns.backbone == "none" else build_backbone(
            ns.backbone, ns.weights, ns.weights_path, ns.layer, ns.grid, ns.projection
        )  # fmt: skip
    except (ValueError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    first_rank = rank_and_world()[0] == 0
    if first_rank and backbone and motion and backbone.feature_dim > 8 * motion.dim:
        print(
            f"note: {backbone.feature_dim} appearance dimensions beside {motion.dim} motion ones: "
            "on small datasets a model can learn the scenes and ignore the motion; fewer "
            "appearance dimensions (--projection 64, a smaller --grid) balance the two streams.",
            file=sys.stderr,
        )
    report = extract_videos(
        ns.root, ns.out, backbone, sampling, motion, ns.batch_size, ns.num_workers, ns.device
    )
    if first_rank:
        streams = [f"{backbone.name} {backbone.feature_dim}-d"] if backbone else []
        streams += [f"{motion.method} motion {motion.dim}-d"] if motion else []
        print(
            f"extract: {len(report.written)} written, {len(report.skipped)} up to date, "
            f"{len(report.failed)} failed ({report.frames} frames, {' + '.join(streams)}) "
            f"-> {ns.out}"
        )
        if report.failed:
            print(f"  failures listed in {ns.out / 'failures.csv'}")
        if report.removed:
            shown = ", ".join(str(p.relative_to(ns.out)) for p in report.removed[:5])
            more = f" and {len(report.removed) - 5} more" if len(report.removed) > 5 else ""
            print(
                f"  removed {len(report.removed)} stale feature file(s) of inputs that are gone, "
                f"moved or failed now: {shown}{more}"
            )
    if report.failed and not (report.written or report.skipped):
        sys.exit(1)
