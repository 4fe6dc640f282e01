"""Signals -> `[T, D]` sequences: decomposition (VMD) and SciPy preprocessing."""

from feature_extractors.signal.vmd import VMDResult, vmd

__all__ = ["VMDResult", "vmd"]
