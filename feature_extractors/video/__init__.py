"""Video -> `[T, D]` per-frame features: sampling, OpenCV decoding, pretrained backbones, and
optical-flow motion descriptors.

Each name below loads its module on first use, so a command's `--help`, or a caller that only
samples frames, does not wait for torchvision.
"""

from __future__ import annotations

import importlib

DEFAULT_BACKBONE = "googlenet"  # as in MATLAB's video recipe
OFFLINE_BACKBONE = "efficientnet_lite0"  # its ImageNet weights are installed with the package

_NAMES = {  # module -> the names it gives
    "backbones": [
        "Backbone",
        "FramePreprocessing",
        "backbone_from_spec",
        "build_backbone",
        "list_backbones",
    ],
    "io": ["VIDEO_SUFFIXES", "count_frames", "frame_rate", "iter_frame_chunks"],
    "motion": ["MotionSettings", "MotionStream", "flow_descriptor", "optical_flow"],
    "sampling": ["FrameSampling", "uniform_indices"],
    "feature_extractors.errors": ["VideoReadError", "WeightsUnavailableError"],
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(["DEFAULT_BACKBONE", "OFFLINE_BACKBONE", *_MODULE_OF])


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'feature_extractors.video' has no attribute {name!r}")
    path = module if "." in module else f"feature_extractors.video.{module}"
    return getattr(importlib.import_module(path), name)
