"""How a stream's files become features: a video's extractor or a signal chain, with its
settings and how to run it over a folder (`StreamEncoding`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feature_extractors.signal import SignalPreprocessing
from feature_extractors.video import Backbone, FrameSampling, MotionSettings
from pipeline.data.cache import ExtractionReport
from pipeline.data.discovery import Sample
from pipeline.prepare.extract import extract_videos, video_settings
from pipeline.prepare.signals import preprocess_recordings

Encoder = Callable[[Path, Path, list[Sample]], ExtractionReport]  # (root, out, samples)


@dataclass
class StreamEncoding:
    """How one stream's files become features: their settings, the run that caches them, and
    their channels when known beforehand (a trained model's)."""

    settings: dict
    run: Encoder
    dim: int | None = None


def signal_encoding(chain: SignalPreprocessing, dim: int | None = None) -> StreamEncoding:
    """A recording stream's extractor: `preprocess_recordings` with this chain (its rate fixed
    for the stream's files), run with its own `workers` and `device`."""

    def run(root: Path, out: Path, found: list[Sample]) -> ExtractionReport:
        return preprocess_recordings(root, out, chain, samples=found)

    return StreamEncoding(chain.settings(), run, dim)


def video_encoding(
    backbone: Backbone | None,
    sampling: FrameSampling,
    motion: MotionSettings | None,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str = "cpu",
    dim: int | None = None,
) -> StreamEncoding:
    """A video stream's extractor: `extract_videos` with these encoders and arguments."""

    def run(root: Path, out: Path, found: list[Sample]) -> ExtractionReport:
        return extract_videos(
            root, out, backbone=backbone, sampling=sampling, motion=motion, batch_size=batch_size,
            num_workers=num_workers, device=device, samples=found,
        )  # fmt: skip

    return StreamEncoding(video_settings(backbone, sampling, motion), run, dim)
