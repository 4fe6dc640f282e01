"""Clips of a long video: decoding 10 clips of 2 s by seeking, against 20 s of video decoded
in one run (what the clips hold) and against decoding each clip from the video's first frame.

A 10-minute MPEG-4 video (320x240, 25 frames/s, OpenCV's mp4v encoder) is written first;
every clip's frames are decoded and colour-converted (`iter_frame_chunks`, sampling ``all``),
as `seqclass extract` does for a row of a clip table.

    python benchmarks/bench_segments.py [--minutes 10] [--clips 10] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from feature_extractors.video import FrameSampling, iter_frame_chunks

from common import machine

FPS, SIZE = 25.0, (320, 240)


def write_video(path: Path, minutes: float) -> Path:
    """Blurred noise panning two pixels per frame, so that every frame is new to the encoder."""
    texture = np.random.default_rng(0).integers(0, 255, (SIZE[1], 4 * SIZE[0], 3), np.uint8)
    texture = cv2.GaussianBlur(texture, (9, 9), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for t in range(int(minutes * 60 * FPS)):
        writer.write(np.roll(texture, -2 * t, axis=1)[:, : SIZE[0]])
    writer.release()
    return path


def decoded_frames(path: Path, interval: tuple[float, float] | None) -> int:
    """Frames of `interval` decoded by seeking (the whole video without one)."""
    chunks = iter_frame_chunks(path, FrameSampling(), 64, interval=interval)
    return sum(len(indices) for _, indices in chunks)


def from_first_frame(path: Path, interval: tuple[float, float]) -> int:
    """The frames of `interval`, reached by decoding every frame before it."""
    capture, kept, index = cv2.VideoCapture(str(path)), 0, 0
    first, last = int(interval[0] * FPS), int(interval[1] * FPS)
    while index < last and capture.grab():
        if index >= first:
            kept += cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB) is not None
        else:
            capture.retrieve()  # decoded, as a reader without seeking must
        index += 1
    capture.release()
    return kept


def timed(run) -> tuple[float, int]:
    start = time.perf_counter()
    frames = run()
    return time.perf_counter() - start, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        video = write_video(Path(tmp) / "long.mp4", args.minutes)
        written = time.perf_counter() - started
        span = args.minutes * 60 - args.seconds
        starts = np.linspace(span / args.clips, span, args.clips).round(2)
        clips = [(float(s), float(s) + args.seconds) for s in starts]
        seek = timed(lambda: sum(decoded_frames(video, clip) for clip in clips))
        contiguous = timed(lambda: decoded_frames(video, (0.0, args.clips * args.seconds)))
        naive = timed(lambda: sum(from_first_frame(video, clip) for clip in clips))
    print(f"\n{args.clips} clips of {args.seconds:g} s spread over a {args.minutes:g}-minute "
          f"video ({SIZE[0]}x{SIZE[1]}, {FPS:g} frames/s, mp4v; written in {written:.0f} s); "
          f"{machine('cpu')}\n\n"
          "| decoding | frames kept | seconds | ratio to 20 s in one run |\n"
          "| --- | ---: | ---: | ---: |")  # fmt: skip
    for name, (seconds, frames) in (
        (f"{args.clips * args.seconds:g} s of video in one run (the target)", contiguous),
        (f"**{args.clips} clips by seeking (`extract` on a clip table)**", seek),
        (f"{args.clips} clips, each decoded from the first frame", naive),
    ):
        print(f"| {name} | {frames} | {seconds:.2f} | {seconds / contiguous[0]:.2f} |")


if __name__ == "__main__":
    main()
