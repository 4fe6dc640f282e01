"""Shared fixtures: tiny generated datasets written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.sample_data import make_signal_dataset


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
