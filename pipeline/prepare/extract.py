"""Run a video backbone over a folder of videos into a `[T, D]` feature-sequence folder.

DataLoader workers decode and preprocess videos in parallel (and compute optical-flow motion
descriptors, when asked) while the main process runs the CNN on frames batched across videos.
Each frame's features are its CNN features followed by its motion descriptor (two streams fused
at the input of the sequence model); either stream may be used alone. Outputs go through the
shared feature cache (`pipeline.data.cache`): atomic, resumable, sharded across ranks.
Unreadable videos are skipped and listed in ``failures.csv``.
"""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from feature_extractors.video import (
    VIDEO_SUFFIXES,
    Backbone,
    FrameSampling,
    MotionSettings,
    MotionStream,
    VideoReadError,
    backbone_from_spec,
    iter_frame_chunks,
)
from pipeline.core.distributed import local_device, rank_and_world
from pipeline.data.cache import (
    ExtractionReport,
    gather_reports,
    plan,
    progress,
    remove_failed,
    remove_stale,
    write_failures,
)
from pipeline.data.discovery import Sample, discover_unlabelled
from pipeline.data.sequence_files import save_sequence, write_feature_settings


def video_settings(
    backbone: Backbone | None, sampling: FrameSampling, motion: MotionSettings | None = None
) -> dict:
    """What turns a video into features: recorded beside them and in trained checkpoints.

    Features are the backbone's (if any) followed by the motion descriptor (if any).
    """
    if backbone is None and motion is None:
        raise ValueError("video features need a backbone, motion descriptors, or both")
    return {
        "kind": "video",
        "backbone": backbone.spec() if backbone else None,
        "motion": motion.as_dict() if motion else None,
        "feature_dim": (backbone.feature_dim if backbone else 0) + (motion.dim if motion else 0),
        "sampling": sampling.as_dict(),
    }


def video_encoders(settings: dict) -> tuple[Backbone | None, FrameSampling, MotionSettings | None]:
    """The backbone, frame sampling and motion descriptors that `video_settings` describes."""
    backbone = backbone_from_spec(settings["backbone"]) if settings["backbone"] else None
    motion = MotionSettings(**settings["motion"]) if settings.get("motion") else None
    return backbone, FrameSampling(**settings["sampling"]), motion


class _VideoChunks(IterableDataset):
    """Yields chunks of this worker's share of the videos `ids` (positions in `videos`, each a
    whole video or a clip of one): preprocessed frames for the CNN and/or motion descriptors."""

    def __init__(
        self,
        videos: list[Sample],
        sampling: FrameSampling,
        backbone: Backbone | None,
        motion: MotionSettings | None,
        chunk: int,
    ) -> None:
        self.videos, self.sampling, self.motion, self.chunk = videos, sampling, motion, chunk
        self.preprocess = backbone.preprocess if backbone else None
        self.ids = list(range(len(videos)))

    def only(self, ids: list[int]) -> _VideoChunks:
        """The same decoding over the videos `ids` alone."""
        subset = copy.copy(self)
        subset.ids = ids
        return subset

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for video in self.ids[worker::workers]:
            try:
                stream = MotionStream(self.motion) if self.motion else None
                path, interval = self.videos[video].path, self.videos[video].seconds
                chunks = iter_frame_chunks(path, self.sampling, self.chunk, interval=interval)
                for frames, indices in chunks:
                    item = {"video": video, "indices": indices, "done": False}
                    if self.preprocess is not None:
                        rgb = torch.from_numpy(frames).permute(0, 3, 1, 2)
                        item["frames"] = self.preprocess(rgb)
                    if stream is not None:
                        item["motion"] = torch.from_numpy(stream(frames))
                    yield item
                yield {"video": video, "done": True}
            except VideoReadError as err:
                yield {"video": video, "done": True, "error": str(err)}
            except Exception as err:  # a decoder error must not end the whole run
                yield {
                    "video": video,
                    "done": True,
                    "error": f"{path}: {type(err).__name__}: {err}",
                }


def _decoded(videos: _VideoChunks, workers: int) -> Iterator[dict]:
    """Every item of `videos`, decoded by `workers` processes.

    A worker process that dies (a decoder segfault, the out-of-memory killer) would end the
    DataLoader. Instead the video each worker was on is decoded again alone in a fresh process:
    one that kills it again gets an error item, and the other videos carry on. A video that is
    decoded again is first announced by a ``restart`` item, so that its earlier chunks are dropped.

    SIGCHLD is held meanwhile: torch's handler for it raises a worker's death into whatever the
    main process runs at that moment (after the loader has said so itself, too); the loader's own
    status check (every 5 s) reports a death here instead, and its workers are shut down first.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        yield from _decoded_with_restarts(videos, workers)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _decoded_with_restarts(videos: _VideoChunks, workers: int) -> Iterator[dict]:
    remaining, started = videos.ids, set()
    while remaining:
        workers = min(workers, len(remaining))
        finished: set[int] = set()
        loader = DataLoader(
            videos.only(remaining), batch_size=None, num_workers=workers,
            worker_init_fn=_one_thread,
        )  # fmt: skip
        iterator = iter(loader)
        try:
            for item in iterator:
                started.add(item["video"])
                finished.update([item["video"]] if item["done"] else [])
                yield item
            return
        except (RuntimeError, ConnectionError, EOFError) as err:
            # the loader says a worker died, or the worker died while handing over a tensor
            if workers == 0 or not _worker_died(err):
                raise
            died = str(err).split(". ")[0]  # the loader's own words, not the error and its frames
        del iterator  # its workers shut down now
        # worker w decoded positions w, w + workers, ... in turn: each one's first unfinished video
        shares = [[v for v in remaining[w::workers] if v not in finished] for w in range(workers)]
        suspects = [share[0] for share in shares if share]
        for video in [v for v in remaining if v in started and v not in finished]:
            yield {"video": video, "restart": True}
        started.clear()
        for video in suspects:
            if workers == 1:
                yield {
                    "video": video,
                    "done": True,
                    "error": _died(videos.videos[video].path, died),
                }
            else:
                yield from _decoded_with_restarts(videos.only([video]), 1)
        remaining = [v for v in remaining if v not in finished and v not in suspects]


def _worker_died(err: Exception) -> bool:
    return isinstance(err, (ConnectionError, EOFError)) or "DataLoader worker" in str(err)


def _died(video: Path, cause: str) -> str:
    """The failure reason of a video whose decoder process died, in the loader's words."""
    return f"{video}: the decoder process died ({cause}); skipped"


def decode_workers(device: str) -> int:
    """Decoding processes when none are asked for: 2 beside a CNN on the CPU, which needs the
    other cores; beside a GPU one per core of this rank's share but one, up to 8, as each
    decodes and preprocesses on one thread (on an H200's host, with the float resize of before,
    about 100 frames/s of 320x240 video a worker: 8 workers gave 1.7x the frames of 4)."""
    if not device.startswith("cuda"):
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, (cores or 1) // rank_and_world()[1] - 1))


def extract_videos(
    root: str | Path,
    out: str | Path,
    *,
    backbone: Backbone | None,
    sampling: FrameSampling,
    motion: MotionSettings | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str = "cpu",
    samples: list[Sample] | None = None,
    rejected: list[tuple[Path, str]] = (),
) -> ExtractionReport:
    """Write `OUT/<same relative path>.npz` (`features [T, D]`, `frame_indices [T]`) per video.

    Features are the `backbone`'s per-frame features followed by the `motion` descriptors; pass
    None for either to leave that stream out. `samples` (default: every video under `root`)
    may be clips of longer videos (`Sample.seconds`): each is decoded by seeking and written to
    ``<video's path>/<start>-<end>.npz``. `rejected` inputs (rows of a list that cannot be
    used) join the report's failures. Without `samples`, the files of videos no longer under
    `root` are removed; with them, files of other samples are left, as they may be another
    fold's.

    `batch_size` frames go through the CNN at once; by default 64 on CUDA and 8 on CPU, where
    small batches stay in cache and run 2-3x faster than batches of 64. `num_workers` decoding
    processes feed it (default: `decode_workers`). Inside a
    torch.distributed process group each rank takes its share of the videos (balanced by file
    size; ``cuda`` means the rank's own GPU) and the returned report covers all ranks.
    """
    root, out = Path(root), Path(out)
    rank = rank_and_world()[0]
    device = local_device(device)
    batch_size = batch_size or (64 if device.startswith("cuda") else 8)
    num_workers = decode_workers(device) if num_workers is None else num_workers
    settings = video_settings(backbone, sampling, motion)
    if rank == 0:
        write_feature_settings(out, settings)
    listed = samples is not None  # a list names the data set; other files may be other folds'
    samples = samples if listed else discover_unlabelled(root, VIDEO_SUFFIXES)
    todo, report = plan(samples, root, out, settings=settings)
    videos = _VideoChunks([job.sample for job in todo], sampling, backbone, motion, batch_size)
    with progress(todo, "video", "extract") as bar:
        writer = _FeatureWriter(todo, backbone, device, report, bar)
        for item in _decoded(videos, num_workers):
            if "restart" in item:  # its decoder died: it is decoded again from the start
                writer.restart(item["video"])
            elif not item["done"]:  # a chunk of frames
                writer.add(item)
                if writer.buffered < batch_size:
                    continue
                writer.encode()
            else:
                writer.finished[item["video"]] = item
            writer.write_finished()
        writer.encode()
        writer.write_finished()
    report = gather_reports(report)
    if rank == 0:
        report.failed = sorted([*report.failed, *rejected])
        write_failures(out, report.failed)
        if not listed:
            remove_stale(root, out, samples, report=report)
    return report


class _FeatureWriter:
    """Chunks of decoded frames in, feature files out: the CNN runs on frames batched across
    videos (`encode`), and a video's file is written once all its frames are encoded."""

    def __init__(
        self,
        todo: list,
        backbone: Backbone | None,
        device: str,
        report: ExtractionReport,
        bar,
    ) -> None:
        self.todo, self.backbone, self.device, self.report, self.bar = (
            todo, backbone, device, report, bar
        )  # fmt: skip
        # channels-last is faster for CNNs on CPU too: 1.3-1.9x measured on 2 cores
        if backbone is not None:
            self.model = backbone.model.to(device, memory_format=torch.channels_last).eval()
        self.buffer: list[dict] = []  # chunks waiting for the CNN
        self.pending: dict[int, list] = {}  # video -> [(features, indices), ...]
        self.finished: dict[int, dict] = {}  # videos fully decoded, waiting for their last frames
        self.started = time.perf_counter()

    @property
    def buffered(self) -> int:
        """Frames waiting for the CNN."""
        return sum(len(c["indices"]) for c in self.buffer)

    def add(self, chunk: dict) -> None:
        self.buffer.append(chunk)

    def restart(self, video: int) -> None:
        """Drop what was kept of `video`: it is decoded again from its first frame."""
        self.pending.pop(video, None)
        self.buffer = [c for c in self.buffer if c["video"] != video]

    def encode(self) -> None:
        """The buffered frames through the CNN, beside their motion descriptors."""
        if not self.buffer:
            return
        if self.backbone is not None:
            frames = torch.cat([c["frames"] for c in self.buffer])
            frames = frames.to(self.device, memory_format=torch.channels_last)
            with torch.inference_mode(), self.backbone.in_precision(torch.device(self.device).type):
                appearance = self.model(frames).float().cpu()
        offset = 0
        for c in self.buffer:
            n = len(c["indices"])
            streams = [appearance[offset : offset + n]] if self.backbone is not None else []
            streams += [c["motion"]] if "motion" in c else []
            self.pending.setdefault(c["video"], []).append((torch.cat(streams, 1), c["indices"]))
            offset += n
        self.report.frames += offset
        self.buffer.clear()

    def write_finished(self) -> None:
        """Write (or record the failure of) each finished video none of whose frames wait."""
        encoding = {c["video"] for c in self.buffer}
        for video in [v for v in self.finished if v not in encoding]:
            item, job = self.finished.pop(video), self.todo[video]
            parts = self.pending.pop(video, [])
            if "error" in item:
                remove_failed(job, item["error"], self.report)
            else:
                features = torch.cat([p[0] for p in parts]).numpy()
                indices = np.concatenate([p[1] for p in parts])
                save_sequence(
                    job.target, features, frame_indices=indices, cache_key=np.array(job.key)
                )
                self.report.written.append(job.target)
            self.bar.update()
        rate = self.report.frames / (time.perf_counter() - self.started)
        self.bar.set_postfix(frames_per_s=f"{rate:.1f}", refresh=False)  # drawn with the next


def _one_thread(worker_id: int) -> None:
    """Decode workers use one thread each, leaving the cores to the CNN."""
    torch.set_num_threads(1)
    # OpenCV's own threads are left alone: cv2.setNumThreads in a forked worker deadlocks when
    # the parent process already ran OpenCV's thread pool (OpenCV 5, pthreads backend).
