"""Decode videos with OpenCV as a stream of sampled RGB frames, in bounded-size chunks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from feature_extractors.errors import VideoReadError
from feature_extractors.video.sampling import FrameSampling, FrameSelector

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


def count_frames(path: str | Path, interval: tuple[float, float] | None = None) -> int:
    """Frames that actually decode (the container's own count is often wrong); with
    `interval` (start, end seconds), those shown in it, reached by seeking."""
    capture = _open(path)
    try:
        return sum(1 for _ in _grabbed(capture, interval, path))
    finally:
        capture.release()


def frame_rate(path: str | Path) -> float:
    """Frames per second the container states; sampled frame `i` is shown at `i / rate`."""
    capture = _open(path)
    rate = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not rate > 0:
        raise VideoReadError(f"{path}: the container states no frame rate, so frames have no times")
    return float(rate)


def iter_frame_chunks(
    path: str | Path,
    sampling: FrameSampling,
    chunk_size: int = 32,
    *,
    interval: tuple[float, float] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(frames [n, H, W, 3] uint8 RGB, indices [n])` of the sampled frames, n <= chunk_size.

    Frames that are not sampled are grabbed but never colour-converted; at most `chunk_size`
    frames are held at a time, whatever the video's length. With `interval` (start, end
    seconds), only the frames shown in ``[start, end)`` are sampled, as if they were the whole
    video: the decoder seeks to `start` (decoding from the keyframe before it, not from the
    first frame) and stops at `end`; `indices` stay the video's own frame numbers. Raises
    `VideoReadError` if the file cannot be opened or yields no frame, or if the interval is
    not inside the video.
    """
    num_frames = count_frames(path, interval) if sampling.needs_frame_count else None
    selector = FrameSelector(sampling, num_frames)
    start = interval[0] if interval else 0.0
    capture = _open(path)
    frames, indices, total = [], [], 0
    try:
        for offset, (index, time_s) in enumerate(_grabbed(capture, interval, path)):
            if selector.done:
                break
            if selector.keep(offset, time_s - start):
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break  # a truncated file: keep what decoded
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                indices.append(index)
                if len(frames) == chunk_size:
                    total += len(frames)
                    yield np.stack(frames), np.asarray(indices)
                    frames, indices = [], []
    finally:
        capture.release()
    if frames:
        total += len(frames)
        yield np.stack(frames), np.asarray(indices)
    if total == 0:
        raise VideoReadError(f"{path}: no frame could be decoded")


def _grabbed(
    capture: cv2.VideoCapture, interval: tuple[float, float] | None, path: str | Path
) -> Iterator[tuple[int, float]]:
    """Grab the frames shown in `interval` (all of them without one), yielding each one's index
    and time (seconds) while it is the capture's current frame. An interval that starts after
    the last frame, or ends more than a frame after it, raises `VideoReadError`."""
    start, end = interval or (0.0, math.inf)
    index = 0
    if start > 0:
        capture.set(cv2.CAP_PROP_POS_MSEC, start * 1000.0)  # the first frame shown at >= start
        index = int(capture.get(cv2.CAP_PROP_POS_FRAMES))
    last = None
    while capture.grab():
        time_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if time_s >= end:
            return
        last = time_s
        yield index, time_s
        index += 1
    if interval is None:
        return
    rate = capture.get(cv2.CAP_PROP_FPS) or 1.0
    if last is None or end - (last + 1.0 / rate) > 1.0 / rate:
        ends = f"before {start:g} s" if last is None else f"at {last + 1.0 / rate:.2f} s"
        raise VideoReadError(
            f"{path}: the interval {start:g}-{end:g} s is not inside the video (it ends {ends})"
        )


def _open(path: str | Path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: zero-byte file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoReadError(f"{path}: OpenCV cannot open it as a video")
    return capture
