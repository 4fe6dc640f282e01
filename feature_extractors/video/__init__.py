"""Video -> `[T, D]` per-frame CNN features: sampling, OpenCV decoding, pretrained backbones."""

from feature_extractors.video.backbones import (
    DEFAULT_BACKBONE,
    OFFLINE_BACKBONE,
    Backbone,
    WeightsUnavailableError,
    build_backbone,
    list_backbones,
)
from feature_extractors.video.io import (
    VIDEO_SUFFIXES,
    VideoReadError,
    count_frames,
    iter_frame_chunks,
)
from feature_extractors.video.sampling import FrameSampling, uniform_indices

__all__ = [
    "DEFAULT_BACKBONE",
    "OFFLINE_BACKBONE",
    "VIDEO_SUFFIXES",
    "Backbone",
    "FrameSampling",
    "VideoReadError",
    "WeightsUnavailableError",
    "build_backbone",
    "count_frames",
    "iter_frame_chunks",
    "list_backbones",
    "uniform_indices",
]
