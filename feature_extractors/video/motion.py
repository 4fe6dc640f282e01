"""Optical-flow motion descriptors: how the picture moves between consecutive sampled frames.

Flow (OpenCV's DIS or Farnebäck) is computed on grey frames resized to a small width. Each
sampled frame gets, per cell of an R×R grid, the mean flow (dx, dy) and mean flow magnitude
into that frame, then the divergence (zoom) and curl (rotation) of the affine flow that fits the
whole frame best. Flow is measured in frame widths per sampled step, so the descriptors do not
depend on the video's resolution. The first frame of a video has no predecessor: zero motion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Literal

import cv2
import numpy as np

Method = Literal["dis", "farneback"]


@dataclass(frozen=True)
class MotionSettings:
    """Motion descriptor settings.

    Args:
        method: ``dis`` (OpenCV's dense inverse search, fast) or ``farneback``.
        grid: R, the descriptor's R×R grid of cells.
        width: frames are resized to this width (aspect kept) before the flow is computed.
    """

    method: Method = "dis"
    grid: int = 3
    width: int = 160

    def __post_init__(self) -> None:
        if self.method not in ("dis", "farneback"):
            raise ValueError(f"unknown optical flow method {self.method!r}; use dis or farneback")
        if self.grid < 1 or self.width < 16:
            raise ValueError(
                f"motion grid must be >= 1 and width >= 16, got {self.grid}, {self.width}"
            )

    @property
    def dim(self) -> int:
        """Length of one frame's descriptor: dx, dy and magnitude per cell, divergence, curl."""
        return 3 * self.grid**2 + 2

    def as_dict(self) -> dict:
        return asdict(self)


def optical_flow(previous: np.ndarray, current: np.ndarray, method: Method = "dis") -> np.ndarray:
    """Dense flow `[H, W, 2]` (pixels) from grey frame `previous` to grey frame `current`."""
    if method == "dis":
        return _dis().calc(previous, current, None)
    return cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def flow_descriptor(flow: np.ndarray, grid: int) -> np.ndarray:
    """`[3 R² + 2]`: per-cell mean dx, dy, magnitude (row-major cells), divergence and curl.

    `flow` is `[H, W, 2]` in pixels; the descriptor is in frame widths. Divergence is the
    divergence and curl of the pixel flow: twice the relative change of scale per step (positive
    when zooming in) and twice the rotation in radians (positive clockwise on screen).
    """
    height, width = flow.shape[:2]
    flow = flow.astype(np.float32) / width
    magnitude = np.linalg.norm(flow, axis=2)
    cells = cv2.resize(flow, (grid, grid), interpolation=cv2.INTER_AREA).reshape(grid, grid, 2)
    cell_magnitude = cv2.resize(magnitude, (grid, grid), interpolation=cv2.INTER_AREA)
    # Least-squares affine fit u = a + b x + c y (and v alike): x and y are centred and
    # orthogonal on the pixel grid, so each slope is a plain projection.
    x = (np.arange(width) - (width - 1) / 2) / (width / 2)
    y = (np.arange(height) - (height - 1) / 2) / (width / 2)
    u, v = flow[..., 0], flow[..., 1]
    du_dx, dv_dx = (u.sum(0) @ x, v.sum(0) @ x) / (height * (x @ x))
    du_dy, dv_dy = (u.sum(1) @ y, v.sum(1) @ y) / (width * (y @ y))
    # x is in half-widths and flow in widths: pixel-flow slopes are twice these
    divergence, curl = 2 * (du_dx + dv_dy), 2 * (dv_dx - du_dy)
    return np.concatenate(
        [cells[..., 0].ravel(), cells[..., 1].ravel(), cell_magnitude.ravel(), [divergence, curl]]
    ).astype(np.float32)


class MotionStream:
    """Motion descriptors of one video's sampled frames, fed in chunks in playback order."""

    def __init__(self, settings: MotionSettings) -> None:
        self.settings = settings
        self._previous: np.ndarray | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """`[n, dim]` descriptors of RGB frames `[n, H, W, 3]` (uint8), each against the one before."""
        out = np.zeros((len(frames), self.settings.dim), dtype=np.float32)
        for i, frame in enumerate(frames):
            grey = self._grey(frame)
            if self._previous is not None:
                flow = optical_flow(self._previous, grey, self.settings.method)
                out[i] = flow_descriptor(flow, self.settings.grid)
            self._previous = grey
        return out

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        size = (self.settings.width, max(1, round(height * self.settings.width / width)))
        return cv2.resize(
            cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA
        )


@cache
def _dis() -> cv2.DISOpticalFlow:
    """One DIS flow object per process: it keeps buffers, not state, between calls."""
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
