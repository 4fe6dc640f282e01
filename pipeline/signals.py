"""Run a `SignalPreprocessing` chain over a folder of recordings into the feature cache.

Each recording becomes ``OUT/<same relative path>.npz`` holding ``features [T, D]``, the time of
each step in seconds (``times [T]``, for interval labels) and the channel names. The cache is
atomic, resumable and sharded across ranks (`pipeline.data.cache`); recordings that cannot be
used are reported to every rank, so that all of them stop (or skip them) together.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from feature_extractors.signal import RECORDING_SUFFIXES, SignalError, SignalPreprocessing
from pipeline.data.cache import (
    ExtractionReport,
    gather_reports,
    plan,
    progress,
    settings_hash,
    write_failures,
)
from pipeline.data.discovery import Sample, discover_unlabelled
from pipeline.data.sequence_files import (
    SequenceDataError,
    save_sequence,
    write_feature_settings,
)
from pipeline.distributed import rank_and_world


def signal_cache_dir(root: str | Path, settings: dict, cache_dir: str | Path | None = None) -> Path:
    """Cache folder of `root`'s recordings under `settings`: ``CACHE/<settings hash>``.

    `cache_dir` defaults to ``<root>-cache`` beside the data folder, or, where that folder
    cannot be written, to ``<user cache>/seqclass/<root>-<hash of its path>`` (with a warning).
    """
    root = Path(root).resolve()  # `.` or `data/` alone would put the cache inside the data
    base = root if root.is_dir() else root.parent
    if cache_dir is None:
        cache_dir = base.parent / f"{base.name}-cache"
        if not os.access(cache_dir if cache_dir.exists() else base.parent, os.W_OK):
            user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            tag = hashlib.sha256(str(base).encode()).hexdigest()[:8]
            fallback = user_cache / "seqclass" / f"{base.name}-{tag}"
            warnings.warn(
                f"{cache_dir} cannot be written: caching the preprocessed recordings in "
                f"{fallback} (set data.cache_dir to choose)",
                stacklevel=2,
            )
            cache_dir = fallback
    return Path(cache_dir) / settings_hash(settings)


def preprocess_recordings(
    root: str | Path,
    out: str | Path,
    preprocessing: SignalPreprocessing,
    samples: list[Sample] | None = None,
) -> ExtractionReport:
    """Cache the processed `[T, D]` sequence of every recording under `root` (or `samples`).

    `preprocessing` must have its rate fixed for these files (`SignalPreprocessing.for_files`).
    Recordings that cannot be used are listed in the report and in ``OUT/failures.csv``.
    """
    root, out = Path(root), Path(out)
    samples = samples if samples is not None else discover_unlabelled(root, RECORDING_SUFFIXES)
    settings = preprocessing.settings()
    first_rank = rank_and_world()[0] == 0
    if first_rank:
        write_feature_settings(out, settings)
    jobs, report = plan(samples, root, out, settings)
    for job in progress(jobs, "recording", "preprocess"):
        try:
            signal = preprocessing.process(job.sample.path)
        except SignalError as err:
            report.failed.append((job.sample.path, str(err)))
            continue
        except Exception as err:  # a reader's or solver's own failure: this file only
            reason = f"{job.sample.path}: {type(err).__name__}: {err}"
            report.failed.append((job.sample.path, reason))
            continue
        save_sequence(
            job.target,
            signal.data.T,
            times=signal.times,
            channels=np.array(signal.names),
            cache_key=np.array(job.key),
        )
        report.written.append(job.target)
        report.frames += signal.data.shape[-1]
    report = gather_reports(report)
    if first_rank:
        write_failures(out, report.failed)
    return report


def raise_failures(report: ExtractionReport, out: Path) -> None:
    """Stop with every recording that could not be preprocessed named (first five shown)."""
    if not report.failed:
        return
    listed = "\n  ".join(reason for _, reason in report.failed[:5])
    more = len(report.failed) - 5
    raise SequenceDataError(
        f"{len(report.failed)} recording(s) could not be preprocessed:\n  {listed}"
        + (f"\n  ... and {more} more, all listed in {out / 'failures.csv'}" if more > 0 else "")
    )
