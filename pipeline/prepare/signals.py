"""Run a `SignalPreprocessing` chain over a folder of recordings into the feature cache.

Worker processes load the recordings and run the steps before the first decomposition; the main
process decomposes recordings of one shape in batches and writes the cache. Each recording
becomes ``OUT/<same relative path>.npz`` holding ``features [T, D]``, the time of
each step in seconds (``times [T]``, for interval labels) and the channel names. The cache is
atomic, resumable and sharded across ranks (`pipeline.data.cache`); recordings that cannot be
used are reported to every rank, so that all of them stop (or skip them) together.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from feature_extractors.signal import RECORDING_SUFFIXES, Signal, SignalError, SignalPreprocessing
from pipeline.core.distributed import rank_and_world
from pipeline.core.errors import UserError
from pipeline.data.cache import (
    ExtractionReport,
    Job,
    gather_reports,
    plan,
    progress,
    settings_hash,
    write_failures,
)
from pipeline.data.discovery import Sample, discover_unlabelled
from pipeline.data.sequence_files import save_sequence, write_feature_settings


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


BATCH_VALUES = 2**18  # recording values (channels x steps) decomposed in one call on the CPU
GPU_BATCH_VALUES = 2**22  # ... and on a GPU, which needs more work per kernel to be busy
COMPILE_FROM = 2**26  # bytes of recordings from which a run fuses VMD's iterations


def preprocess_recordings(
    root: str | Path,
    out: str | Path,
    preprocessing: SignalPreprocessing,
    *,
    samples: list[Sample] | None = None,
) -> ExtractionReport:
    """Cache the processed `[T, D]` sequence of every recording under `root` (or `samples`).

    `preprocessing` must have its rate fixed for these files (`SignalPreprocessing.for_files`).
    Its `workers` load the recordings and run the steps before the first decomposition; the
    main process decomposes recordings of one shape together, up to `BATCH_VALUES` values held
    at once (`GPU_BATCH_VALUES` on a GPU), and writes the cache. Runs over `COMPILE_FROM` bytes
    of recordings fuse VMD's iterations; either way a recording's features do not depend on its
    batch. Recordings that cannot be used are listed in the report and in ``OUT/failures.csv``.
    """
    root, out = Path(root), Path(out)
    samples = samples if samples is not None else discover_unlabelled(root, RECORDING_SUFFIXES)
    settings = preprocessing.settings()
    first_rank = rank_and_world()[0] == 0
    if first_rank:
        write_feature_settings(out, settings)
    jobs, report = plan(samples, root, out, settings=settings)
    # Compiling costs 1-16 s once and makes VMD 2-3x faster: it pays from about 64 MB of
    # recordings. Decided on all of them, so a resumed run decides as the first did.
    compile = sum(s.path.stat().st_size for s in samples) >= COMPILE_FROM
    batches = _Batches(preprocessing, report, progress(jobs, "recording", "preprocess"),
                       compile=compile)  # fmt: skip
    for job, head in _heads(jobs, preprocessing):
        batches.add(job, head)
    batches.close()
    report = gather_reports(report)
    if first_rank:
        write_failures(out, report.failed)
    return report


class _Batches:
    """Recordings of one shape and rate held until `BATCH_VALUES` values (`GPU_BATCH_VALUES` on
    a GPU) wait, then the most of them decomposed together; files are written in a background
    thread while the next batch is decomposed. Outcomes go into `report`."""

    def __init__(
        self,
        preprocessing: SignalPreprocessing,
        report: ExtractionReport,
        bar: tqdm,
        *,
        compile: bool,
    ) -> None:
        self.preprocessing, self.report, self.bar, self.compile = (
            preprocessing,
            report,
            bar,
            compile,
        )
        self.decomposes = preprocessing.batch_from < len(preprocessing.steps)
        on_gpu = preprocessing.torch_device().type != "cpu"
        self.batch_values = GPU_BATCH_VALUES if on_gpu else BATCH_VALUES
        self.pending: dict[tuple, list[tuple[Job, Signal]]] = {}  # shape, rate, start -> jobs
        self.held = 0
        self.writer = ThreadPoolExecutor(1)
        self.saving: deque[Future] = deque()

    def add(self, job: Job, head: Signal | Exception) -> None:
        """Hold a recording after the steps before its decomposition (or the error they
        raised); decompose the largest group once enough values are held."""
        if isinstance(head, Exception):
            self.report.failed.append((job.sample.path, _reason(job.sample.path, head)))
            self.bar.update()
            return
        self.pending.setdefault((head.data.shape, head.fs, head.t0), []).append((job, head))
        self.held += head.data.size
        while self.pending and (self.held >= self.batch_values or not self.decomposes):
            largest = max(self.pending, key=lambda k: len(self.pending[k]) * math.prod(k[0]))
            self._finish(self.pending.pop(largest))

    def _finish(self, group: list[tuple[Job, Signal]]) -> None:
        """Decompose a group together and queue its files."""
        self.held -= sum(signal.data.size for _, signal in group)
        signals = [signal for _, signal in group]
        results = self.preprocessing.apply_together(signals, self.compile)
        for (job, _), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                self.report.failed.append((job.sample.path, _reason(job.sample.path, result)))
            else:
                self.saving.append(self.writer.submit(_save, job, result))
                self.report.written.append(job.target)
                self.report.frames += result.data.shape[-1]
            self.bar.update()
        while len(self.saving) > 2 * len(group):  # a slow disk holds the next batch back
            self.saving.popleft().result()

    def close(self) -> None:
        """Decompose what is held and wait for every file; a write's error (a full disk) is
        raised here."""
        for group in list(self.pending.values()):
            self._finish(group)
        self.pending.clear()
        for future in self.saving:
            future.result()
        self.writer.shutdown()
        self.bar.close()


def _save(job: Job, signal: Signal) -> None:
    save_sequence(
        job.target,
        signal.data.T,
        times=signal.times,
        channels=np.array(signal.names),
        cache_key=np.array(job.key),
    )


def _reason(path: Path, err: Exception) -> str:
    """One line for `failures.csv`: the file, then what went wrong."""
    if isinstance(err, ValueError):  # the chain's own errors, which name the step
        return str(err) if str(path) in str(err) else f"{path}: {err}"
    return f"{path}: {type(err).__name__}: {err}"  # a reader's or solver's: out of memory, ...


def _heads(jobs: list[Job], chain: SignalPreprocessing) -> Iterator[tuple[Job, Signal | Exception]]:
    """Each job's recording loaded and run through the steps before the first decomposition,
    in `chain.workers` processes (in any order), or here when there are few jobs. A worker
    that dies names its recording as failed, and the others go on."""
    workers = chain.workers if chain.workers is not None else _default_workers()
    if workers == 0 or len(jobs) < 4 * workers:
        for job in jobs:
            yield job, _head(chain, job.sample.path)
        return
    queue = deque(jobs)
    while queue:
        lost = yield from _pooled(queue, chain, workers)
        for job in lost:  # the pool broke: run each of its jobs alone to find the one
            yield job, _alone(chain, job.sample.path)


def _pooled(
    queue: deque[Job], chain: SignalPreprocessing, workers: int
) -> Generator[tuple[Job, Signal | Exception], None, list[Job]]:
    """Run `queue`'s jobs in a pool of `workers`, a few ahead; return the jobs in flight when
    a worker died (empty when all went well)."""
    in_flight: dict[Future, Job] = {}
    pool = ProcessPoolExecutor(workers)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < 4 * workers:
                job = queue.popleft()
                in_flight[pool.submit(_head, chain, job.sample.path)] = job
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    return list(in_flight.values())
                except Exception as err:  # a result that could not be sent back
                    result = err
                yield in_flight.pop(future), result
        return []
    finally:
        pool.shutdown(cancel_futures=True)


def _alone(chain: SignalPreprocessing, path: Path) -> Signal | Exception:
    """`_head` of one recording in a process of its own, or the error saying it died."""
    with ProcessPoolExecutor(1) as pool:
        try:
            return pool.submit(_head, chain, path).result()
        except BrokenProcessPool:
            return SignalError(
                f"{path}: the process preprocessing it died (out of memory, or a crash in its "
                "reader); the other recordings went on. Check or shorten this one."
            )


def _head(chain: SignalPreprocessing, path: Path) -> Signal | Exception:
    try:
        return chain.head(path)
    except Exception as err:  # this file's failure, whatever its kind
        return err


def _default_workers() -> int:
    """This rank's share of the CPU cores, less two for its own decomposition, at most 8 (0 on
    2 cores, where workers beside torch's threads were measured to slow the chain down)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(8, (cpus or 1) // rank_and_world()[1] - 2))


def raise_failures(report: ExtractionReport, out: Path) -> None:
    """Stop with every recording that could not be preprocessed named (first five shown)."""
    if not report.failed:
        return
    listed = "\n  ".join(reason for _, reason in report.failed[:5])
    more = len(report.failed) - 5
    raise UserError(
        f"{len(report.failed)} recording(s) could not be preprocessed:\n  {listed}"
        + (f"\n  ... and {more} more, all listed in {out / 'failures.csv'}" if more > 0 else "")
    )
