"""Run a video backbone over a folder of videos into a `[T, D]` feature-sequence folder.

DataLoader workers decode and preprocess videos in parallel while the main process runs the CNN
on frames batched across videos. Each output file is written atomically with its cache key
(file identity + every extraction setting); a restarted run skips files whose key still matches.
Unreadable videos are skipped and listed in ``failures.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from feature_extractors.video import (
    VIDEO_SUFFIXES,
    Backbone,
    FrameSampling,
    VideoReadError,
    iter_frame_chunks,
)
from pipeline.data.discovery import Sample, discover_unlabelled
from pipeline.data.sequence_files import save_sequence, write_feature_settings
from pipeline.distributed import gather_to_all, local_device, rank_and_world


@dataclass
class ExtractionReport:
    """What an extraction run did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already up to date
    failed: list[tuple[Path, str]] = field(default_factory=list)
    frames: int = 0


def video_settings(backbone: Backbone, sampling: FrameSampling) -> dict:
    """What turns a video into features: recorded beside them and in trained checkpoints."""
    return {
        "kind": "video",
        "backbone": backbone.spec(),
        "feature_dim": backbone.feature_dim,
        "sampling": sampling.as_dict(),
    }


def feature_path(video: Path, root: Path, out: Path) -> Path:
    """Where the features of `video` (found under `root`, a folder or the file) go under `out`."""
    return (out / video.relative_to(root if root.is_dir() else root.parent)).with_suffix(".npz")


def cache_key(video: Path, settings: dict) -> str:
    """Hash of the file's identity (path name, size, mtime) and the extraction settings."""
    stat = video.stat()
    identity = {"name": video.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    blob = json.dumps({"file": identity, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def stored_key(path: Path) -> str | None:
    """The cache key stored in a feature file, or None if absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["cache_key"]) if "cache_key" in npz.files else None
    except Exception:
        return None


class _VideoChunks(IterableDataset):
    """Yields preprocessed frame chunks of this worker's share of the videos."""

    def __init__(self, videos: list[Path], sampling: FrameSampling, backbone: Backbone, chunk: int):
        self.videos, self.sampling, self.preprocess, self.chunk = (
            videos,
            sampling,
            backbone.preprocess,
            chunk,
        )

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for i in range(worker, len(self.videos), workers):
            try:
                for frames, indices in iter_frame_chunks(self.videos[i], self.sampling, self.chunk):
                    pixels = self.preprocess(torch.from_numpy(frames).permute(0, 3, 1, 2))
                    yield {"video": i, "frames": pixels, "indices": indices, "done": False}
                yield {"video": i, "done": True}
            except VideoReadError as err:
                yield {"video": i, "done": True, "error": str(err)}
            except Exception as err:  # a decoder crash must not end the whole run
                yield {
                    "video": i,
                    "done": True,
                    "error": f"{self.videos[i]}: {type(err).__name__}: {err}",
                }


def extract_videos(
    root: str | Path,
    out: str | Path,
    backbone: Backbone,
    sampling: FrameSampling,
    batch_size: int | None = None,
    num_workers: int = 2,
    device: str = "cpu",
) -> ExtractionReport:
    """Write `OUT/<same relative path>.npz` (`features [T, D]`, `frame_indices [T]`) per video.

    `batch_size` frames go through the CNN at once; by default 64 on CUDA and 8 on CPU, where
    small batches stay in cache and run 2-3x faster than batches of 64. Inside a
    torch.distributed process group each rank takes its share of the videos (balanced by file
    size; ``cuda`` means the rank's own GPU) and the returned report covers all ranks.
    """
    root, out = Path(root), Path(out)
    rank, world = rank_and_world()
    device = local_device(device)
    on_cuda = device.startswith("cuda")
    batch_size = batch_size or (64 if on_cuda else 8)
    samples = discover_unlabelled(root, VIDEO_SUFFIXES)
    samples = sorted(samples, key=lambda s: -s.path.stat().st_size)[rank::world]
    settings = video_settings(backbone, sampling)
    if rank == 0:
        write_feature_settings(out, settings)
    report = ExtractionReport()
    todo: list[tuple[Sample, Path, str]] = []
    for sample in samples:
        target = feature_path(sample.path, root, out)
        key = cache_key(sample.path, settings)
        if target.exists() and stored_key(target) == key:
            report.skipped.append(target)
        else:
            todo.append((sample, target, key))
    # channels-last is faster for CNNs on CPU too: 1.3-1.9x measured on 2 cores
    model = backbone.model.to(device, memory_format=torch.channels_last).eval()
    loader = DataLoader(
        _VideoChunks([s.path for s, _, _ in todo], sampling, backbone, chunk=batch_size),
        batch_size=None, num_workers=min(num_workers, len(todo)), worker_init_fn=_one_thread,
    )  # fmt: skip
    pending: dict[int, list] = {}  # video -> [(features, indices), ...]
    buffer: list[dict] = []
    start = time.perf_counter()
    desc = "extract" if world == 1 else f"extract (rank 0 of {world})"
    bar = tqdm(total=len(todo), unit="video", desc=desc, disable=rank > 0 or not todo)

    def flush() -> None:
        if not buffer:
            return
        frames = torch.cat([c["frames"] for c in buffer]).to(
            device, memory_format=torch.channels_last
        )
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=on_cuda):
            features = model(frames)
        features = features.float().cpu()
        offset = 0
        for c in buffer:
            n = len(c["indices"])
            pending.setdefault(c["video"], []).append((features[offset : offset + n], c["indices"]))
            offset += n
        report.frames += offset
        buffer.clear()

    finished: dict[int, dict] = {}  # videos fully decoded, waiting for their last frames

    def write_finished() -> None:
        encoding = {c["video"] for c in buffer}
        for video in [v for v in finished if v not in encoding]:
            item = finished.pop(video)
            sample, target, key = todo[video]
            parts = pending.pop(video, [])
            if "error" in item:
                report.failed.append((sample.path, item["error"]))
            else:
                features = torch.cat([p[0] for p in parts]).numpy()
                indices = np.concatenate([p[1] for p in parts])
                save_sequence(target, features, frame_indices=indices, cache_key=np.array(key))
                report.written.append(target)
            bar.update()
        bar.set_postfix(frames_per_s=f"{report.frames / (time.perf_counter() - start):.1f}")

    with bar:
        buffered = 0  # frames waiting in `buffer`
        for item in loader:
            if "frames" in item:
                buffer.append(item)
                buffered += len(item["indices"])
                if buffered < batch_size:
                    continue
                flush()
                buffered = 0
            else:
                finished[item["video"]] = item
            write_finished()
        flush()
        write_finished()
    reports = gather_to_all(report)
    report = ExtractionReport(
        written=[p for r in reports for p in r.written],
        skipped=[p for r in reports for p in r.skipped],
        failed=sorted(f for r in reports for f in r.failed),
        frames=sum(r.frames for r in reports),
    )
    if rank == 0:
        _write_failures(out, report.failed)
    return report


def _one_thread(worker_id: int) -> None:
    """Decode workers use one thread each, leaving the cores to the CNN."""
    torch.set_num_threads(1)


def _write_failures(out: Path, failed: list[tuple[Path, str]]) -> None:
    path = out / "failures.csv"
    if not failed:
        path.unlink(missing_ok=True)
        return
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows([str(p), reason] for p, reason in failed)
