"""Which frames to keep: small functions of a video's frame count, times or indices.

Modes: ``all`` frames; ``every`` k-th frame; ``uniform`` (N frames spread evenly); ``fps`` (a target
frame rate, by timestamp, so variable-frame-rate videos are sampled evenly in time). Any mode can be
capped with `max_frames`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Mode = Literal["all", "every", "uniform", "fps"]


@dataclass(frozen=True)
class FrameSampling:
    """Frame sampling settings.

    Args:
        mode: ``all``, ``every``, ``uniform`` or ``fps``.
        value: k for ``every``, N for ``uniform``, frames per second for ``fps``.
        max_frames: keep at most this many sampled frames (the first ones), None for no cap.
    """

    mode: Mode = "all"
    value: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("all", "every", "uniform", "fps"):
            raise ValueError(f"unknown sampling mode {self.mode!r}; use all, every, uniform or fps")
        if self.mode != "all" and (self.value is None or self.value <= 0):
            raise ValueError(f"sampling mode {self.mode!r} needs a positive value")
        if self.mode in ("every", "uniform") and (self.value < 1 or self.value != int(self.value)):
            what = "every k-th frame" if self.mode == "every" else "N frames"
            raise ValueError(
                f"sampling mode {self.mode!r} takes {what}: a whole number >= 1, not {self.value}"
            )
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1 (or unset), not {self.max_frames}")

    @property
    def needs_frame_count(self) -> bool:
        """True when the indices depend on the total number of frames (``uniform``)."""
        return self.mode == "uniform"

    def as_dict(self) -> dict:
        return asdict(self)


def uniform_indices(num_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over `num_frames` (centres of equal segments)."""
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    count = min(count, num_frames)
    return ((np.arange(count) + 0.5) * num_frames / count).astype(np.int64)


class FrameSelector:
    """Decides, frame by frame while decoding, whether to keep each frame."""

    def __init__(self, sampling: FrameSampling, num_frames: int | None = None) -> None:
        self.sampling = sampling
        self.kept = 0
        self._next_time = 0.0
        self._wanted = (
            set(uniform_indices(num_frames or 0, int(sampling.value)).tolist())
            if sampling.needs_frame_count
            else None
        )

    @property
    def done(self) -> bool:
        cap = self.sampling.max_frames
        full = cap is not None and self.kept >= cap
        return full or (self._wanted is not None and self.kept >= len(self._wanted))

    def keep(self, index: int, time_s: float) -> bool:
        """Whether frame `index`, shown at `time_s` seconds, is sampled."""
        s = self.sampling
        if self.done:
            return False
        if s.mode == "all":
            chosen = True
        elif s.mode == "every":
            chosen = index % int(s.value) == 0
        elif s.mode == "uniform":
            chosen = index in self._wanted
        else:  # fps: the first frame at or after each tick of the target clock
            chosen = time_s + 1e-6 >= self._next_time
            if chosen:
                self._next_time += 1.0 / s.value
                while self._next_time <= time_s:  # skip ticks a long frame already covered
                    self._next_time += 1.0 / s.value
        self.kept += chosen
        return chosen
