"""Video feature extraction throughput and memory, measured side by side in one run.

1. decode: OpenCV decoding + the backbone's preprocessing, no CNN (frames/s); then each alone
   on one thread, as a decode worker runs them.
2. CNN: the backbone alone on frames decoded beforehand (frames/s): the ceiling.
3. naive: read every frame of a video into memory, then run the CNN in batches.
4. pipeline: `extract_videos` (decode workers in parallel with the CNN, batches across videos).
5. motion: optical-flow descriptors alone (DIS, Farnebäck; decoded frames, one process), and the
   pipeline with DIS motion descriptors computed in the decode workers beside the CNN.
6. Frames resized as uint8 (the default) against the float resize of features made before:
   the preprocessing alone on one thread at 320x240 and 1280x720, and the pipeline on 1280x720.
7. Peak RSS of `extract_videos` on a short and a long video, each in a fresh process.

    python benchmarks/bench_extract.py [--backbone efficientnet_lite0] [--device cpu]
        [--videos 8] [--frames 150] [--long-frames 10000]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from feature_extractors.video import (
    Backbone,
    FramePreprocessing,
    FrameSampling,
    MotionSettings,
    MotionStream,
    build_backbone,
    iter_frame_chunks,
)
from pipeline.prepare.extract import extract_videos

from common import sync

SIZE = (320, 240)
HD = (1280, 720)


def write_clip(path: Path, frames: int, seed: int = 0) -> Path:
    """A 320x240 MJPG clip panning over a random-phase pattern (cheap to make, real to decode)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : SIZE[1], 0 : 4 * SIZE[0]]
    pattern = np.stack([np.sin(xx / f + rng.uniform(0, 6)) for f in (7.0, 13.0, 29.0)], -1)
    pattern = ((pattern * 0.5 + 0.5) * 255 * (0.6 + 0.4 * np.cos(yy / 17.0))[..., None]).astype(
        np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, SIZE)
    for t in range(frames):
        left = (4 * t) % (3 * SIZE[0])
        writer.write(np.ascontiguousarray(pattern[:, left : left + SIZE[0]]))
    writer.release()
    return path


def decode_fps(videos: list[Path], preprocess) -> float:
    count, start = 0, time.perf_counter()
    for video in videos:
        for frames, _ in iter_frame_chunks(video, FrameSampling(), 64):
            preprocess(torch.from_numpy(frames).permute(0, 3, 1, 2))
            count += len(frames)
    return count / (time.perf_counter() - start)


def one_thread_fps(videos: list[Path], preprocess) -> tuple[float, float]:
    """Decoding alone and preprocessing alone, on one torch thread as a decode worker runs them
    (frames/s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        chunks = [f for v in videos for f, _ in iter_frame_chunks(v, FrameSampling(), 64)]
        decoding = time.perf_counter() - start
        start = time.perf_counter()
        for frames in chunks:
            preprocess(torch.from_numpy(frames).permute(0, 3, 1, 2))
        preprocessing = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    count = sum(len(frames) for frames in chunks)
    return count / decoding, count / preprocessing


def upscaled(video: Path, out: Path, size: tuple[int, int] = HD) -> Path:
    """`video` re-encoded at `size` (MJPG)."""
    capture = cv2.VideoCapture(str(video))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    while (frame := capture.read())[0]:
        writer.write(cv2.resize(frame[1], size))
    writer.release()
    return out


def resize_rates(
    videos: list[Path], tmp: Path, backbone: Backbone, args: argparse.Namespace, batch: int
) -> dict[str, float]:
    """Frames/s with frames resized as uint8 and in float: the preprocessing alone on one
    thread at 320x240 and at 1280x720, then `extract_videos` on the videos at 1280x720."""
    hd = [upscaled(v, tmp / "hd" / v.name) for v in videos[:4]]
    frames = {
        size: np.concatenate([f for f, _ in iter_frame_chunks(v, FrameSampling(), 64)])[:64]
        for size, v in (("320x240", videos[0]), ("1280x720", hd[0]))
    }
    rates, threads = {}, torch.get_num_threads()
    for uint8 in (True, False):
        resize = "uint8" if uint8 else "float"
        step = FramePreprocessing(backbone.preprocess.preset, uint8_resize=uint8)
        torch.set_num_threads(1)
        for size, rgb in frames.items():
            start = time.perf_counter()
            step(torch.from_numpy(rgb).permute(0, 3, 1, 2))
            rates[f"preprocessing alone, 1 thread, {size}, {resize} resize"] = len(rgb) / (
                time.perf_counter() - start
            )
        torch.set_num_threads(threads)
        start = time.perf_counter()
        report = extract_videos(
            tmp / "hd", tmp / f"hd-{resize}", backbone=replace(backbone, preprocess=step),
            sampling=FrameSampling(), batch_size=batch, num_workers=args.workers,
            device=args.device,
        )  # fmt: skip
        rates[f"pipeline, 1280x720, {resize} resize"] = report.frames / (
            time.perf_counter() - start
        )
    return dict(sorted(rates.items()))


def cnn_fps(backbone: Backbone, model, frames: torch.Tensor, batch: int, device: str) -> float:
    """The CNN alone on preprocessed frames already on `device`, in the precision `extract` runs
    it in; one untimed pass first (every batch shape: cuDNN's plans, the GPU's clocks), then the
    best of three."""
    frames, best = frames.to(device, memory_format=torch.channels_last), 0.0
    with torch.inference_mode(), backbone.in_precision(torch.device(device).type):
        for repeat in range(4):
            start = time.perf_counter()
            for i in range(0, len(frames), batch):
                model(frames[i : i + batch])
            sync(device)
            best = max(best, len(frames) / (time.perf_counter() - start)) if repeat else 0.0
    return best


def flow_fps(frames: np.ndarray, method: str) -> float:
    """Motion descriptors alone, on frames decoded beforehand (one process)."""
    stream, start = MotionStream(MotionSettings(method)), time.perf_counter()
    stream(frames)
    return len(frames) / (time.perf_counter() - start)


def naive_fps(videos: list[Path], backbone: Backbone, model, batch: int, device: str) -> float:
    count, start = 0, time.perf_counter()
    for video in videos:
        capture, frames = cv2.VideoCapture(str(video)), []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        pixels = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
        with torch.inference_mode(), backbone.in_precision(torch.device(device).type):
            for i in range(0, len(pixels), batch):
                x = backbone.preprocess(pixels[i : i + batch])
                x = x.to(device, memory_format=torch.channels_last)
                model(x)
        count += len(frames)
    sync(device)
    return count / (time.perf_counter() - start)


def peak_rss_mb(video: Path, args: argparse.Namespace) -> float:
    """Peak resident memory of a fresh process extracting `video`, plus its largest worker's."""
    code = (
        "import resource, sys, tempfile; sys.path.insert(0, '.');"
        "from feature_extractors.video import FrameSampling, build_backbone;"
        "from pipeline.prepare.extract import extract_videos;"
        f"b = build_backbone({args.backbone!r}, {args.weights!r});"
        f"extract_videos({str(video)!r}, tempfile.mkdtemp(), b, FrameSampling(),"
        f" num_workers={args.workers}, device={args.device!r});"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(own + kids)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", default="DEFAULT", help="'random' needs no download")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, help="default: 64 on CUDA, 8 on CPU")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150, help="frames per throughput video")
    parser.add_argument("--short-frames", type=int, default=100)
    parser.add_argument("--long-frames", type=int, default=10_000)
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    batch = args.batch_size or (64 if args.device.startswith("cuda") else 8)
    backbone = build_backbone(args.backbone, weights=args.weights)
    model = backbone.model.to(args.device, memory_format=torch.channels_last).eval()
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "-"
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"GPU {gpu}; {args.backbone} on {args.device}, batch {batch}, {args.workers} workers; "
        f"{args.videos} videos x {args.frames} frames at {SIZE[0]}x{SIZE[1]}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        videos = [write_clip(Path(tmp) / f"v/{i}.avi", args.frames, i) for i in range(args.videos)]
        rgb = np.concatenate([f for f, _ in iter_frame_chunks(videos[0], FrameSampling(), 64)])
        decoded = backbone.preprocess(torch.from_numpy(rgb).permute(0, 3, 1, 2))
        alone = one_thread_fps(videos, backbone.preprocess)
        rates = {
            "decode": decode_fps(videos, backbone.preprocess),
            "decoding alone, 1 thread": alone[0],
            "preprocessing alone, 1 thread": alone[1],
            "CNN": cnn_fps(backbone, model, decoded, batch, args.device),
            "naive": naive_fps(videos, backbone, model, batch, args.device),
        }
        start = time.perf_counter()
        report = extract_videos(
            Path(tmp) / "v",
            Path(tmp) / "f",
            backbone=backbone,
            sampling=FrameSampling(),
            batch_size=batch,
            num_workers=args.workers,
            device=args.device,
        )
        rates["pipeline"] = report.frames / (time.perf_counter() - start)
        rates["flow alone, DIS"] = flow_fps(rgb, "dis")
        rates["flow alone, Farnebäck"] = flow_fps(rgb, "farneback")
        start = time.perf_counter()
        report = extract_videos(
            Path(tmp) / "v", Path(tmp) / "fm", backbone=backbone, sampling=FrameSampling(),
            motion=MotionSettings("dis"), batch_size=batch, num_workers=args.workers,
            device=args.device,
        )  # fmt: skip
        rates["pipeline + DIS motion"] = report.frames / (time.perf_counter() - start)
        print("\n| stage | frames/s | × CNN-only |\n| --- | ---: | ---: |")
        for name, rate in rates.items():
            print(f"| {name} | {rate:.1f} | {rate / rates['CNN']:.2f} |")
        resizes = resize_rates(videos, Path(tmp), backbone, args, batch)
        print("\n| frames resized | frames/s | × float resize |\n| --- | ---: | ---: |")
        for name, rate in resizes.items():
            print(f"| {name} | {rate:.1f} | {rate / resizes[name.replace('uint8', 'float')]:.2f} |")
        if args.skip_rss:
            return
        short = write_clip(Path(tmp) / "short.avi", args.short_frames)
        long = write_clip(Path(tmp) / "long.avi", args.long_frames)
        rss_short, rss_long = peak_rss_mb(short, args), peak_rss_mb(long, args)
        print(
            f"\npeak RSS (main process + largest decode worker): {args.short_frames} frames {rss_short:.0f} MB, "
            f"{args.long_frames} frames {rss_long:.0f} MB, ratio {rss_long / rss_short:.2f}"
        )


if __name__ == "__main__":
    main()
