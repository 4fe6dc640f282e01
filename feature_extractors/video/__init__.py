"""Video -> `[T, D]` per-frame features: sampling, OpenCV decoding, pretrained backbones, and
optical-flow motion descriptors."""

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
    frame_rate,
    iter_frame_chunks,
)
from feature_extractors.video.motion import (
    MotionSettings,
    MotionStream,
    flow_descriptor,
    optical_flow,
)
from feature_extractors.video.sampling import FrameSampling, uniform_indices

__all__ = [
    "DEFAULT_BACKBONE",
    "OFFLINE_BACKBONE",
    "VIDEO_SUFFIXES",
    "Backbone",
    "FrameSampling",
    "MotionSettings",
    "MotionStream",
    "VideoReadError",
    "WeightsUnavailableError",
    "build_backbone",
    "count_frames",
    "flow_descriptor",
    "frame_rate",
    "iter_frame_chunks",
    "list_backbones",
    "optical_flow",
    "uniform_indices",
]
