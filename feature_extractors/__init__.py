"""Turn one raw input into a `[T, D]` float sequence. Never imports `pipeline`.

`feature_extractors.video` and `feature_extractors.signal` load apart: the names below come
from the signal package on first use, so a video extraction never loads SciPy or PyEMD.
"""

from __future__ import annotations

import importlib

__all__ = ["Decomposition", "SignalPreprocessing", "emd", "vmd"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("feature_extractors.signal"), name)
    raise AttributeError(f"module 'feature_extractors' has no attribute {name!r}")
