"""Fuse the streams of multi-stream samples (a video and sensor recordings) into one `[T, D]`
sequence per sample.

Each stream goes through its own extractor and cache, under ``OUT/.streams/<stream>/``: videos
through `extract_videos` (backbone, frame sampling, motion), recordings through their
`SignalPreprocessing` chain. Then each sample's streams are put on one time base, the steps of
its sparsest stream (usually the video's sampled frames): every other stream is summarized by
its mean over each of those steps' intervals (or interpolated where it has no step inside one).
Streams are cut to the span they all cover. The fused sequence, its `times` and the streams it
holds go to ``OUT/<sample>.npz`` through the same atomic, keyed cache, so that a second run reads
everything from cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feature_extractors.video import VideoReadError, frame_rate
from pipeline.core.distributed import gather_to_all, rank_and_world
from pipeline.core.errors import UserError
from pipeline.data.cache import (
    ExtractionReport,
    feature_path,
    merge_reports,
    progress,
    stored_key,
    write_failures,
)
from pipeline.data.discovery import Sample, write_manifest
from pipeline.data.sequence_files import save_sequence, write_feature_settings
from pipeline.data.streams import StreamSample, stream_kind
from pipeline.prepare.encodings import StreamEncoding

STREAM_CACHE = ".streams"


@dataclass
class FusionReport(ExtractionReport):
    """What a fusion run did: the fused files (as `ExtractionReport`), each stream's own
    extraction, and how many seconds were cut to the span that all streams cover."""

    streams: dict[str, ExtractionReport] = field(default_factory=dict)
    kept_seconds: float = 0.0
    cut_seconds: float = 0.0
    used: dict[str, list[str]] = field(default_factory=dict)  # fused file -> its streams


def fuse(
    samples: list[StreamSample],
    root: Path,
    out: Path,
    *,
    encodings: dict[str, StreamEncoding],
    fill: dict[str, np.ndarray] | None = None,
) -> tuple[dict, FusionReport]:
    """Fused sequences of `samples` (stream files under `root`) in `out`, and the settings that
    made them (written to ``OUT/feature_settings.json``).

    A sample that lacks a stream, or whose stream fails, is skipped and listed in the report
    and in ``OUT/failures.csv`` with every reason. With `fill` (stream -> per-channel values), a
    missing stream is instead filled with those values at every step, and the sample is fused
    from the streams it has.
    """
    base = root if root.is_dir() else root.parent
    report = FusionReport()
    reasons = _missing_streams(samples, list(encodings), fill)
    stream_files, dims = _encode_streams(samples, reasons, base, out, encodings, report)
    settings = fusion_settings(encodings, dims)
    rank, world = rank_and_world()
    mine = [s for s in samples if not reasons[s.name]][rank::world]
    for sample in progress(mine, "sample", "fuse"):
        files = {n: stream_files[n][sample.name] for n in encodings if n in sample.streams}
        _fuse_sample(sample, files, out, settings=settings, fill=fill, report=report)
    report = _gathered(report)
    if rank == 0:
        write_feature_settings(out, settings)
        failures = [(s.folder, "; ".join(reasons[s.name])) for s in samples if reasons[s.name]]
        report.failed = sorted(failures + report.failed)
        _write(out, report, samples, manifest=root.is_file())
    return settings, report


def _missing_streams(
    samples: list[StreamSample], names: list[str], fill: dict[str, np.ndarray] | None
) -> dict[str, list[str]]:
    """Each sample's reasons not to fuse it: streams it lacks that `fill` does not cover."""
    reasons: dict[str, list[str]] = {s.name: [] for s in samples}
    for sample in samples:
        if not any(name in sample.streams for name in names):
            reasons[sample.name].append(f"holds none of the streams {names}")
            continue
        for name in names:
            if name not in sample.streams and (fill is None or name not in fill):
                reasons[sample.name].append(f"no {name} stream file")
    return reasons


def _encode_streams(
    samples: list[StreamSample],
    reasons: dict[str, list[str]],
    base: Path,
    out: Path,
    encodings: dict[str, StreamEncoding],
    report: FusionReport,
) -> tuple[dict[str, dict[str, Path]], dict[str, int]]:
    """Run each stream's extractor into its cache under ``OUT/.streams/``: the feature file of
    each sample's stream (stream -> sample name -> file) and each stream's width. A stream that
    fails adds its reason to the sample's `reasons`; each stream's report goes into `report`."""
    stream_files: dict[str, dict[str, Path]] = {}
    dims: dict[str, int] = {}
    for name, encoding in encodings.items():
        wanted = [s for s in samples if name in s.streams and not reasons[s.name]]
        folder = out / STREAM_CACHE / name
        stream_report = encoding.run(
            base, folder, [Sample(s.streams[name], s.label) for s in wanted]
        )
        report.streams[name] = stream_report
        failed = dict(stream_report.failed)
        stream_files[name] = {}
        for s in wanted:
            if s.streams[name] in failed:
                reasons[s.name].append(f"{name} stream: {failed[s.streams[name]]}")
            else:
                stream_files[name][s.name] = feature_path(s.streams[name], base, folder)
        written = next(iter(stream_files[name].values()), None)
        dims[name] = _width(written) if written is not None else encoding.dim or 0
    return stream_files, dims


def _fuse_sample(
    sample: StreamSample,
    files: dict[str, Path],
    out: Path,
    *,
    settings: dict,
    fill: dict[str, np.ndarray] | None,
    report: FusionReport,
) -> None:
    """Write ``OUT/<sample>.npz`` from its streams' feature `files` (or keep it, when its key
    matches), filling the streams it lacks from `fill`; the outcome goes into `report`."""
    target = out / f"{sample.name}.npz"
    key = _fused_key(files, sample.offsets, settings)
    if target.exists() and stored_key(target) == key:
        report.skipped.append(target)
        report.used[str(target)] = list(files)
        return
    order = [stream["name"] for stream in settings["streams"]]
    try:
        missing = {n: fill[n] for n in order if n not in files}
        features, times, cut = align(sample, files, fill=missing, order=order)
    except (UserError, VideoReadError) as err:  # gathered from every rank
        report.failed.append((sample.folder, str(err)))
        return
    save_sequence(target, features, times=times, streams=np.array(list(files)),
                  cache_key=np.array(key))  # fmt: skip
    report.written.append(target)
    report.used[str(target)] = list(files)
    report.frames += len(features)
    report.kept_seconds += float(times[-1] - times[0]) + _step(times)
    report.cut_seconds += cut


def fusion_settings(encodings: dict[str, StreamEncoding], dims: dict[str, int]) -> dict:
    """Plain JSON description of fused features: each stream's name, width and settings."""
    return {
        "kind": "fusion",
        "streams": [
            {"name": name, "dim": dims[name], "settings": encoding.settings}
            for name, encoding in encodings.items()
        ],
        "feature_dim": sum(dims.values()),
        "alignment": "means over the steps of the sparsest stream whose middles lie in the common span",
    }


def align(
    sample: StreamSample,
    files: dict[str, Path],
    *,
    fill: dict[str, np.ndarray],
    order: list[str],
) -> tuple[np.ndarray, np.ndarray, float]:
    """`features [T, D]` of the sample's streams (`files`: their cached features; `fill`: the
    values of missing ones), side by side in `order`, on the time base of its sparsest stream;
    their `times [T]` (seconds), and how many seconds of stream were cut to the common span."""
    streams = {name: _timed(sample, name, path) for name, path in files.items()}
    steps = {name: _step(times) for name, (_, times) in streams.items()}
    base = max(steps, key=steps.get)
    start = max(times[0] for _, times in streams.values())
    end = min(times[-1] + steps[name] for name, (_, times) in streams.items())
    base_times = streams[base][1]
    middles = base_times + steps[base] / 2
    kept = base_times[(middles >= start) & (middles <= end)]  # steps mostly inside the span
    if len(kept) == 0:
        covered = {n: f"{t[0]:.2f}-{t[-1] + steps[n]:.2f} s" for n, (_, t) in streams.items()}
        raise UserError(
            f"{sample.folder}: the streams cover {covered}, which overlap for less than one "
            f"{base} step ({steps[base]:.3g} s); check the offsets and the recordings."
        )
    total = max(t[-1] + steps[n] for n, (_, t) in streams.items()) - min(
        t[0] for _, t in streams.values()
    )
    parts = [
        np.broadcast_to(fill[name], (len(kept), len(fill[name])))
        if name in fill
        else _summarized(*streams[name], kept, steps[base])
        for name in order
    ]
    features = np.concatenate(parts, axis=1).astype(np.float32)
    return features, kept, max(0.0, float(total - len(kept) * steps[base]))


def _summarized(
    features: np.ndarray, times: np.ndarray, starts: np.ndarray, width: float
) -> np.ndarray:
    """Mean of `features [n, D]` (steps at `times`) over each interval `[start, start + width)`;
    an interval holding no step gets the value interpolated at its middle."""
    lo = np.searchsorted(times, starts, side="left")
    hi = np.searchsorted(times, starts + width, side="left")
    sums = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0)])
    counts = (hi - lo)[:, None]
    out = (sums[hi] - sums[lo]) / np.maximum(counts, 1)
    empty = counts[:, 0] == 0
    if empty.any():
        middle = starts[empty] + width / 2
        out[empty] = np.stack(
            [np.interp(middle, times, features[:, d]) for d in range(features.shape[1])], axis=1
        )
    return out


def _timed(sample: StreamSample, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A stream's cached `features [n, D]` and their times in seconds, offset included."""
    with np.load(path, allow_pickle=False) as npz:
        features = npz["features"].astype(np.float64)
        if stream_kind(sample.streams[name]) == "video":
            times = npz["frame_indices"] / frame_rate(sample.streams[name])
        else:
            times = npz["times"].astype(np.float64)
    return features, times + sample.offsets.get(name, 0.0)


def _step(times: np.ndarray) -> float:
    """Seconds per step: the median interval (one step: a millisecond)."""
    return float(np.median(np.diff(times))) if len(times) > 1 else 1e-3


def _width(path: Path) -> int:
    with np.load(path, allow_pickle=False) as npz:
        return int(npz["features"].shape[1])


def _fused_key(files: dict[str, Path], offsets: dict[str, float], settings: dict) -> str:
    """What a fused file depends on: its streams' own cache keys, the offsets, the settings."""
    parts = {name: stored_key(path) for name, path in files.items()}
    blob = json.dumps({"streams": parts, "offsets": offsets, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _gathered(report: FusionReport) -> FusionReport:
    """One report over every rank."""
    reports = gather_to_all(report)
    return FusionReport(
        **vars(merge_reports(reports)),
        streams=report.streams,  # the same on every rank: each stream's run gathered its own
        kept_seconds=sum(r.kept_seconds for r in reports),
        cut_seconds=sum(r.cut_seconds for r in reports),
        used={k: v for r in reports for k, v in r.used.items()},
    )


def _write(out: Path, report: FusionReport, samples: list[StreamSample], manifest: bool) -> None:
    """`failures.csv`, the removal of fused files that no current sample vouches for, and for
    a manifest's samples ``OUT/manifest.csv`` (their labels, splits and groups)."""
    write_failures(out, report.failed)
    current = {out / f"{s.name}.npz" for s in samples}
    fused = set(report.written) | set(report.skipped)
    for path in sorted(p for p in out.rglob("*.npz") if STREAM_CACHE not in p.parts):
        if (path not in current or path not in fused) and stored_key(path) is not None:
            path.unlink()
            report.removed.append(path)
    if manifest:
        files = [(out / f"{s.name}.npz", s) for s in samples]
        write_manifest(out / "manifest.csv", [Sample(path, s.label, s.split, group=s.group)
                                              for path, s in files if path in fused])  # fmt: skip
