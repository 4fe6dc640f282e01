"""Small built-in datasets for the demo and the tests, generated on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGNAL_CLASSES = ("low", "high", "rising", "falling")


def make_signal_dataset(
    root: str | Path,
    samples_per_class: int = 40,
    fs: float = 100.0,
    length_range: tuple[int, int] = (120, 240),
    seed: int = 0,
) -> Path:
    """Write `ROOT/<class>/<i>.npy` 3-channel recordings of variable length.

    Classes differ in frequency content (``low`` 3 Hz vs ``high`` 12 Hz) and in temporal order
    (``rising``: 3 Hz then 12 Hz; ``falling``: the same two tones the other way round), so a
    model must track both spectrum and time to separate all four.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label in SIGNAL_CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(samples_per_class):
            steps = int(rng.integers(*length_range, endpoint=True))
            t = np.arange(steps) / fs
            switch = int(steps * rng.uniform(0.35, 0.65))
            freq = {
                "low": np.full(steps, 3.0),
                "high": np.full(steps, 12.0),
                "rising": np.where(np.arange(steps) < switch, 3.0, 12.0),
                "falling": np.where(np.arange(steps) < switch, 12.0, 3.0),
            }[label] * rng.uniform(0.9, 1.1)
            phase = 2 * np.pi * np.cumsum(freq) / fs + rng.uniform(0, 2 * np.pi)
            amplitude = rng.uniform(0.5, 2.0)
            channels = [
                amplitude * np.sin(phase),
                amplitude * np.cos(phase + rng.uniform(-0.3, 0.3)),
                0.2 * t + rng.normal(0, 0.3, steps),  # slow drift
            ]
            x = np.stack(channels, axis=1) + rng.normal(0, 0.2, (steps, 3))
            np.save(root / label / f"{label}_{i:03d}.npy", x.astype(np.float32))
    return root
