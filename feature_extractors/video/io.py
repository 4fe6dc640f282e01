"""Decode videos with OpenCV as a stream of sampled RGB frames, in bounded-size chunks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from feature_extractors.video.sampling import FrameSampling, FrameSelector

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class VideoReadError(RuntimeError):
    """A video that cannot be decoded; the message says why."""


def count_frames(path: str | Path) -> int:
    """Frames that actually decode (the container's own count is often wrong)."""
    capture = _open(path)
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def frame_rate(path: str | Path) -> float:
    """Frames per second the container states; sampled frame `i` is shown at `i / rate`."""
    capture = _open(path)
    rate = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not rate > 0:
        raise VideoReadError(f"{path}: the container states no frame rate, so frames have no times")
    return float(rate)


def iter_frame_chunks(
    path: str | Path, sampling: FrameSampling, chunk_size: int = 32
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(frames [n, H, W, 3] uint8 RGB, indices [n])` of the sampled frames, n <= chunk_size.

    Frames that are not sampled are grabbed but never colour-converted; at most `chunk_size`
    frames are held at a time, whatever the video's length. Raises `VideoReadError` if the file
    cannot be opened or yields no frame.
    """
    num_frames = count_frames(path) if sampling.needs_frame_count else None
    selector = FrameSelector(sampling, num_frames)
    capture = _open(path)
    frames, indices, index, total = [], [], 0, 0
    try:
        while not selector.done and capture.grab():
            time_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if selector.keep(index, time_s):
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break  # a truncated file: keep what decoded
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                indices.append(index)
                if len(frames) == chunk_size:
                    total += len(frames)
                    yield np.stack(frames), np.asarray(indices)
                    frames, indices = [], []
            index += 1
    finally:
        capture.release()
    if frames:
        total += len(frames)
        yield np.stack(frames), np.asarray(indices)
    if total == 0:
        raise VideoReadError(f"{path}: no frame could be decoded ({index} frames grabbed)")


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
