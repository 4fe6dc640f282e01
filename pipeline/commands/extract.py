"""Encode every video under ROOT into a [T, D] per-frame feature file under OUT: CNN
features, optical-flow motion descriptors, or both side by side. Samples of several streams
(ROOT/<class>/<sample>/ folders holding a video and sensor recordings, or a manifest with a
column per stream) are encoded stream by stream and fused on one time base."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from feature_extractors.video import DEFAULT_BACKBONE
from pipeline.core.arguments import add_device_argument, add_workers_argument, count, output_folder
from pipeline.core.errors import UserError

if TYPE_CHECKING:
    from feature_extractors.video import Backbone, FrameSampling, MotionSettings
    from pipeline.data.cache import ExtractionReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root", type=Path,
        help="video file, folder of <class>/<video> files, or of <class>/<sample>/ folders "
        "holding one file per stream (or a manifest label,<stream>,...), or a table of clips "
        "of longer videos (path,start,end,label[,split]; Kinetics' CSV)",
    )  # fmt: skip
    parser.add_argument("--out", type=output_folder, required=True, help="feature folder to write")
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
    cnn.add_argument(
        "--precision", default="32-true", choices=["32-true", "bf16-mixed"],
        help="what the CNN runs in: float32 (the same features on a CPU and a GPU) or bfloat16 "
        "autocast (for speed on a GPU's bfloat16 units; features 2-4%% apart). Recorded with "
        "the features",
    )  # fmt: skip
    flow = parser.add_argument_group("motion: optical flow between consecutive sampled frames")
    flow.add_argument(
        "--motion", default="dis", choices=["none", "dis", "farneback"],
        help="motion descriptors beside the CNN's features, as a stream of their own (default "
        "dis): per-cell mean flow, flow magnitude, divergence (zoom) and curl (rotation); "
        "'none' for appearance alone",
    )  # fmt: skip
    flow.add_argument("--motion-grid", type=int, default=3, help="cells per side of the flow grid")
    flow.add_argument(
        "--motion-width", type=int, default=160, help="frame width the flow is computed at"
    )
    frames = parser.add_argument_group("frame sampling")
    frames.add_argument(
        "--sampling", default="all", choices=["all", "every", "uniform", "fps"],
        help="which frames: all (default), every k-th, N spread uniformly, or a frame rate",
    )  # fmt: skip
    frames.add_argument(
        "--sampling-value", type=float, help="k (every), N (uniform) or frames/s (fps)"
    )
    frames.add_argument("--max-frames", type=int, help="keep at most this many frames per video")
    lists = parser.add_argument_group("the dataset's own train/test split")
    lists.add_argument(
        "--splits", type=Path, metavar="LISTS",
        help="UCF101's ucfTrainTestlist/ or HMDB51's split folder (or one list file in it): "
        "ROOT is the video folder, and OUT/splitN.csv lists the fold's videos for fit",
    )  # fmt: skip
    lists.add_argument("--fold", type=int, default=1, help="which official split (1-3)")
    streams = parser.add_argument_group("recordings beside the videos (multi-stream samples)")
    streams.add_argument(
        "--signal", action="append", default=[], metavar="[STREAM=]CONFIG",
        help="YAML of the preprocessing chain of the recording stream STREAM (all of them when "
        "no STREAM is named): a data.signal mapping (fs, steps), or a fit config holding one",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=count(1), help="frames per CNN batch (default: 64 on CUDA, 8 on CPU)"
    )
    add_workers_argument(parser)
    add_device_argument(parser)
    parser.add_argument(
        "--devices", type=count(1), default=1,
        help="processes to shard the videos over (one per GPU with --device cuda); under "
        "torchrun, one per launched process",
    )  # fmt: skip


def run(ns: argparse.Namespace) -> None:
    from feature_extractors.devices import bf16_emulated
    from feature_extractors.video import FrameSampling, MotionSettings
    from pipeline.core.distributed import run_on_ranks
    from pipeline.data.streams import is_stream_layout

    if ns.backbone == "none" and ns.motion == "none":
        raise UserError(
            "--backbone none --motion none leaves nothing to extract; keep --motion dis"
        )
    if ns.sampling == "all" and ns.sampling_value is not None:
        raise UserError(
            f"--sampling-value {ns.sampling_value} needs --sampling every, uniform or fps; the "
            "default, all, keeps every frame."
        )
    try:
        FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
        if ns.motion != "none":
            MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    except ValueError as err:
        raise UserError(str(err)) from None
    slow = ns.precision == "bf16-mixed" and bf16_emulated(ns.device)
    if slow:
        warnings.warn(f"{slow}; leave --precision at 32-true.", stacklevel=1)
    if is_stream_layout(ns.root):
        run_on_ranks(_fuse_on_rank, ns.devices, ns)
        return
    if ns.signal:
        raise UserError(
            f"--signal is for samples of several streams; {ns.root} holds <class>/<video> files."
        )
    run_on_ranks(_extract_on_rank, ns.devices, ns)


def _encoders(
    ns: argparse.Namespace,
) -> tuple[Backbone | None, FrameSampling, MotionSettings | None]:
    """The backbone, frame sampling and motion descriptors the options ask for."""
    from feature_extractors.video import (
        FrameSampling,
        MotionSettings,
        WeightsUnavailableError,
        build_backbone,
    )

    sampling = FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
    motion = (
        None if ns.motion == "none" else MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    )
    try:
        backbone = (
            None
            if ns.backbone == "none"
            else build_backbone(
                ns.backbone,
                weights=ns.weights,
                weights_path=ns.weights_path,
                layer=ns.layer,
                grid=ns.grid,
                projection=ns.projection,
                precision=ns.precision,
            )
        )
    except (ValueError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    return backbone, sampling, motion


def _extract_on_rank(ns: argparse.Namespace) -> None:
    from feature_extractors.video import VIDEO_SUFFIXES
    from pipeline.core.distributed import rank_and_world
    from pipeline.data.discovery import discover_unlabelled
    from pipeline.prepare.extract import extract_videos

    samples, rejected, manifest = _listed(ns)
    # a folder without videos is named before the CNN's weights are sought
    found = samples if samples is not None else discover_unlabelled(ns.root, VIDEO_SUFFIXES)
    backbone, sampling, motion = _encoders(ns)
    first_rank = rank_and_world()[0] == 0
    if first_rank and sampling.mode != "fps":
        _note_mixed_frame_rates([s.path for s in found])
    report = extract_videos(
        ns.root,
        ns.out,
        backbone=backbone,
        sampling=sampling,
        motion=motion,
        batch_size=ns.batch_size,
        num_workers=ns.num_workers,
        device=ns.device,
        samples=samples,
        rejected=rejected,
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
        _print_removed(report, ns.out)
        if manifest is not None:
            _write_listed(manifest, samples, report, ns)
    if report.failed and not (report.written or report.skipped):
        sys.exit(1)


def _note_mixed_frame_rates(videos: list[Path], looked_at: int = 64) -> None:
    """Say so when the videos (up to `looked_at` of them, spread over the list) run at rates
    more than 10 % apart: a step is then a frame, whose length in time differs by video."""
    from feature_extractors.video import VideoReadError, frame_rate

    rates = []
    for path in videos[:: max(1, len(videos) // looked_at)][:looked_at]:
        try:
            rates.append(frame_rate(path))
        except VideoReadError:
            continue  # named with the failures once decoding is tried
    if rates and max(rates) > 1.1 * min(rates):
        print(
            f"note: the videos run at {min(rates):.4g} to {max(rates):.4g} frames/s (of "
            f"{len(rates)} looked at). A step is a sampled frame, so sequence lengths and the "
            "motion per step follow each video's rate; --sampling fps N samples every video at "
            "N frames/s, on one time base.",
            file=sys.stderr,
        )


def _listed(ns: argparse.Namespace) -> tuple[list | None, list, Path | None]:
    """The samples a split list or clip table gives (None for a plain folder), the rows it
    rejects, and the manifest of the extracted features to write."""
    from pipeline.data.video_lists import is_clip_table, read_clip_table, read_split_lists

    if ns.splits is not None:
        if not ns.root.is_dir():
            raise UserError(f"--splits: {ns.root} must be the folder of <class>/<video> files.")
        samples, rejected = read_split_lists(ns.root, ns.splits, ns.fold)
        return samples, rejected, ns.out / f"split{ns.fold}.csv"
    if is_clip_table(ns.root):
        samples, rejected = read_clip_table(ns.root)
        return samples, rejected, ns.out / "manifest.csv"
    return None, [], None


def _write_listed(manifest: Path, samples: list, report: ExtractionReport, ns) -> None:
    """Write the manifest of the listed samples whose features exist, and say how to train."""
    from dataclasses import replace

    from pipeline.data.cache import sample_target
    from pipeline.data.discovery import write_manifest

    done = set(report.written) | set(report.skipped)
    targets = [(sample_target(s, ns.root, ns.out), s) for s in samples]
    write_manifest(manifest, [replace(s, path=t, seconds=None) for t, s in targets if t in done])
    print(f"  train with --data.root {manifest}")


def _print_removed(report: ExtractionReport, out: Path) -> None:
    if report.removed:
        shown = ", ".join(str(p.relative_to(out)) for p in report.removed[:5])
        more = f" and {len(report.removed) - 5} more" if len(report.removed) > 5 else ""
        print(
            f"  removed {len(report.removed)} stale feature file(s) of inputs that are gone, "
            f"moved or failed now: {shown}{more}"
        )


def _fuse_on_rank(ns: argparse.Namespace) -> None:
    from pipeline.core.distributed import rank_and_world
    from pipeline.data.discovery import same_columns
    from pipeline.data.streams import common_streams, discover_stream_samples, stream_kind
    from pipeline.prepare.encodings import signal_encoding, video_encoding
    from pipeline.prepare.fusion import fuse

    samples = discover_stream_samples(ns.root)
    chains = _signal_chains(ns.signal)
    encodings, video = {}, None
    names = common_streams(samples)
    rare = sorted({n for s in samples for n in s.streams} - set(names))
    if rare and rank_and_world()[0] == 0:
        print(f"note: files named {', '.join(rare)} are in fewer than half of the samples; they "
              "are left out as streams", file=sys.stderr)  # fmt: skip
    for name in names:
        files = [s.streams[name] for s in samples if name in s.streams]
        if stream_kind(files[0]) == "video":
            if name in chains:
                raise UserError(f"--signal {name}=...: {name} is a video stream")
            video = video or video_encoding(
                *_encoders(ns),
                batch_size=ns.batch_size,
                num_workers=ns.num_workers,
                device=ns.device,
            )  # one backbone for every video stream
            encodings[name] = video
            continue
        chain = chains.get(name) or chains.get(None)
        if chain is None:
            raise UserError(
                f"{files[0]}: the recording stream {name!r} needs its preprocessing: pass "
                f"--signal {name}=CHAIN.yaml (fs and steps, as data.signal in a fit config)."
            )
        same_columns(files, chain.channels)  # a stream's channels are known by their place
        encodings[name] = signal_encoding(chain.for_files(files))  # its workers and device kept
    unknown = sorted(set(chains) - set(encodings) - {None})
    if unknown:
        raise UserError(f"--signal {unknown[0]}=...: no stream {unknown[0]!r} in {ns.root}")
    settings, report = fuse(samples, ns.root, ns.out, encodings=encodings)
    if rank_and_world()[0] == 0:
        cached = ", ".join(
            f"{name} {len(r.skipped)} from cache + {len(r.written)} new"
            for name, r in report.streams.items()
        )
        widths = " + ".join(f"{s['name']} {s['dim']}-d" for s in settings["streams"])
        print(
            f"extract: {len(report.written)} fused, {len(report.skipped)} up to date, "
            f"{len(report.failed)} failed ({widths}; streams: {cached}) -> {ns.out}"
        )
        if report.written:
            print(
                f"  aligned on the sparsest stream's steps: {report.kept_seconds:.1f} s kept, "
                f"{report.cut_seconds:.1f} s cut to the span all streams cover"
            )
        if report.failed:
            print(f"  failures listed in {ns.out / 'failures.csv'}")
        if ns.root.is_file():
            print(f"  train with --data.root {ns.out / 'manifest.csv'}")
        _print_removed(report, ns.out)
    if not (report.written or report.skipped):
        sys.exit(1)


def _signal_chains(options: list[str]) -> dict:
    """`--signal [STREAM=]CONFIG` options as stream name (None: every stream) -> chain."""
    import yaml

    from feature_extractors.signal import SignalPreprocessing

    chains = {}
    for option in options:
        name, _, path = option.rpartition("=")
        try:
            config = yaml.safe_load(Path(path).read_text()) or {}
            config = config.get("data", {}).get("signal", config) if "data" in config else config
            chains[name or None] = SignalPreprocessing(**config)
            chains[name or None].check_device()
        except (OSError, yaml.YAMLError, TypeError, ValueError) as err:
            raise UserError(
                f"--signal {option}: {err}; give a YAML file of fs and steps (as data.signal)."
            ) from None
    return chains
