"""Shared fixtures: tiny generated datasets written to tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.config import NetConfig
from pipeline.models.sequence_net import SequenceNet
from pipeline.prepare.sample_data import make_signal_dataset

if os.environ.get("PYTEST_XDIST_WORKER"):  # test processes side by side: a core each, for
    os.environ["OMP_NUM_THREADS"] = "1"  # them and for the processes they start, as torch's
    torch.set_num_threads(1)  # threads beside another process's spin and slow both down


@pytest.fixture(autouse=True)
def _deterministic_mode_stays_in_its_test():
    """`--trainer.deterministic true` turns torch's deterministic mode on for the whole process
    (and it changes what code runs: torchmetrics avoids `bincount` under it); later tests in
    the same process must not inherit it."""
    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)


@pytest.fixture
def signal_root(tmp_path: Path) -> Path:
    """The built-in 4-class signal dataset, small: 12 samples per class, 40-80 steps."""
    return make_signal_dataset(tmp_path / "signals", samples_per_class=12, length_range=(40, 80))


def write_npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def random_tree(root: Path, classes: dict[str, int], channels: int = 2, seed: int = 0) -> Path:
    """`root/<class>/<i>.npy` with `classes[name]` random samples of 5-15 steps each."""
    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        for i in range(count):
            steps = int(rng.integers(5, 16))
            write_npy(root / name / f"{i}.npy", rng.normal(size=(steps, channels)).astype("f4"))
    return root


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: float = 10.0,
                image: np.ndarray | None = None, step: int = 1) -> Path:  # fmt: skip
    """An MJPG .avi whose frames slide across `image` (default: a gradient), `step` per frame."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (200, 1))[..., None].repeat(3, 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    start = 0 if step > 0 else image.shape[1] - image.shape[0]
    for t in range(frames):
        left = start + 4 * step * t
        crop = image[:, left : left + image.shape[0]]
        writer.write(cv2.cvtColor(cv2.resize(crop, size), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def plain_net(
    input_size: int,
    num_classes: int | None,
    *,
    max_length: int = 1,
    streams: list[int] | None = None,
    **options,
) -> SequenceNet:
    """A `SequenceNet` of the given options over a plain base: one forward LSTM layer of 128,
    no front end, last-step pooling, no kernel features, no stream dropout."""
    base = {"bidirectional": False, "hidden_size": 128, "pooling": "last", "frontend": "none",
            "kernel_features": 0, "stream_dropout": 0.0, "stride": 1}  # fmt: skip
    config = NetConfig(**{**base, **options})
    return SequenceNet(input_size, num_classes, config, max_length=max_length, streams=streams)
