"""Turn one raw input into a `[T, D]` float sequence. Never imports `pipeline`."""

from feature_extractors.signal import Decomposition, SignalPreprocessing, emd, vmd

__all__ = ["Decomposition", "SignalPreprocessing", "emd", "vmd"]
