"""The feature cache shared by every extractor: one `.npz` per input, keyed on file + settings.

Each output file is written atomically with its cache key (the input's identity and every
setting that shaped it); a restarted run skips files whose key still matches. Inside a
torch.distributed process group each rank takes its share of the inputs, and the reports are
gathered so that every rank sees the whole run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.distributed import gather_to_all, rank_and_world
from pipeline.core.errors import UserError
from pipeline.core.progress import progress_bar
from pipeline.data.discovery import Sample


@dataclass
class ExtractionReport:
    """What a caching run did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already up to date
    failed: list[tuple[Path, str]] = field(default_factory=list)
    frames: int = 0  # time steps read (video frames, signal samples)
    removed: list[Path] = field(default_factory=list)  # stale files of an earlier run


@dataclass
class Job:
    """One input still to process: where its features go, and the key to store with them."""

    sample: Sample
    target: Path
    key: str


def feature_path(source: Path, root: Path, out: Path) -> Path:
    """Where the features of `source` (found under `root`, a folder or the file) go under `out`:
    the same relative path, or for an input outside `root` (a manifest's `../` or absolute
    path) ``_outside/<hash of its folder>/<name>``. Links inside `root` count as inside."""
    base = Path(os.path.abspath(root if root.is_dir() else root.parent))
    source = Path(os.path.abspath(source))
    if not source.is_relative_to(base):
        tag = hashlib.sha256(str(source.parent).encode()).hexdigest()[:12]
        return (out / "_outside" / tag / source.name).with_suffix(".npz")
    return (out / source.relative_to(base)).with_suffix(".npz")


def sample_target(sample: Sample, root: Path, out: Path) -> Path:
    """Where a sample's features go: its file's `feature_path`, or for a clip of a longer
    file (`sample.seconds`), ``<that path without .npz>/<start>-<end>.npz``."""
    target = feature_path(sample.path, root, out)
    if sample.seconds is None:
        return target
    start, end = sample.seconds
    return target.with_suffix("") / f"{start:.3f}-{end:.3f}.npz"


def settings_hash(settings: dict) -> str:
    """Short stable hash of a settings dict: names a cache folder per setting."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def cache_key(source: Path, settings: dict) -> str:
    """Hash of the file's identity (name, size, mtime) and the settings that shape its features."""
    stat = source.stat()
    identity = {"name": source.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    blob = json.dumps({"file": identity, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def stored_key(path: Path) -> str | None:
    """The cache key stored in a feature file, or None if absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["cache_key"]) if "cache_key" in npz.files else None
    except Exception:
        return None


def plan(
    samples: list[Sample], root: Path, out: Path, *, settings: dict
) -> tuple[list[Job], ExtractionReport]:
    """This rank's share of `samples` that is not cached yet, and a report of the rest.

    Samples are dealt to ranks largest file first, so that ranks get similar amounts of work.
    """
    rank, world = rank_and_world()
    targets: dict[Sample, Path] = {}  # input -> its feature file
    sources: dict[Path, Sample] = {}  # feature file -> its input
    for sample in samples:
        target = targets[sample] = sample_target(sample, root, out)
        other = sources.setdefault(target, sample)
        if other is not sample and other.path == sample.path:  # one target: one interval
            raise UserError(
                f"{sample.path}{_interval(sample)} is listed twice; a clip is one sample, with "
                "one label and one split. Remove one of the rows."
            )
        if other.path != sample.path:
            raise UserError(
                f"{other.path} and {sample.path} would both be cached as {target}: inputs "
                "in one folder need different names before their suffix. Rename one of them."
            )
    mine = sorted(samples, key=lambda s: -s.path.stat().st_size)[rank::world]
    jobs, report = [], ExtractionReport()
    for sample in mine:
        target = targets[sample]
        clip = {} if sample.seconds is None else {"interval": list(sample.seconds)}
        key = cache_key(sample.path, {**settings, **clip})
        if target.exists() and stored_key(target) == key:
            report.skipped.append(target)
        else:
            jobs.append(Job(sample, target, key))
    return jobs, report


def _interval(sample: Sample) -> str:
    return "" if sample.seconds is None else f" {sample.seconds[0]:g}-{sample.seconds[1]:g} s"


def progress(jobs: list, unit: str, desc: str):
    """A progress bar over this rank's `jobs`, shown by rank 0 alone (which says so)."""
    rank, world = rank_and_world()
    desc = desc if world == 1 else f"{desc} (rank 0 of {world})"
    return progress_bar(jobs, unit, desc, disable=rank > 0 or not jobs)


def gather_reports(report: ExtractionReport) -> ExtractionReport:
    """One report covering every rank (the report itself outside a process group)."""
    return merge_reports(gather_to_all(report))


def merge_reports(reports: list[ExtractionReport]) -> ExtractionReport:
    """The reports of several ranks as one."""
    return ExtractionReport(
        written=[p for r in reports for p in r.written],
        skipped=[p for r in reports for p in r.skipped],
        failed=sorted(f for r in reports for f in r.failed),
        frames=sum(r.frames for r in reports),
        removed=[p for r in reports for p in r.removed],
    )


def remove_stale(root: Path, out: Path, samples: list[Sample], *, report: ExtractionReport) -> None:
    """Delete the feature files under `out` of inputs no longer under `root` (removed, moved to
    another class folder, no longer listed). Only files an extractor wrote (they hold a cache
    key) are touched; `report.removed` lists them. (An input that fails has its earlier file
    removed where it fails: `remove_failed`.)"""
    current = {sample_target(s, root, out) for s in samples}
    for path in sorted(out.rglob("*.npz")):
        if path not in current and stored_key(path) is not None:
            path.unlink()
            report.removed.append(path)


def remove_failed(job: Job, reason: str, report: ExtractionReport) -> None:
    """Record that `job` failed, and delete the features an earlier run wrote for it: they no
    longer describe its input."""
    report.failed.append((job.sample.path, reason))
    if job.target.exists() and stored_key(job.target) is not None:
        job.target.unlink()
        report.removed.append(job.target)


def write_failures(out: Path, failed: list[tuple[Path, str]]) -> None:
    """List the inputs that could not be processed in `out/failures.csv` (removed when none)."""
    path = out / "failures.csv"
    if not failed:
        path.unlink(missing_ok=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows([str(p), reason] for p, reason in failed)
