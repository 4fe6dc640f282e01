"""The errors extractors raise for inputs that cannot be used; each message names the file (or
the weights) and the fix. Apart from the extractors, so that catching them loads neither torch
nor SciPy."""

from __future__ import annotations


class SignalError(ValueError):
    """A recording that cannot be used as it is; the message names the file and the fix."""


class VideoReadError(RuntimeError):
    """A video that cannot be decoded; the message says why."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be found; the message says where to put them."""
