"""Signals -> `[T, D]` sequences: loading, SciPy preprocessing, VMD and the EMD family."""

from feature_extractors.signal.decomposition import Decomposition
from feature_extractors.signal.emd import emd
from feature_extractors.signal.io import RECORDING_SUFFIXES, SignalError, load_recording
from feature_extractors.signal.preprocessing import STEPS, Signal, SignalPreprocessing
from feature_extractors.signal.vmd import vmd

__all__ = [
    "RECORDING_SUFFIXES",
    "STEPS",
    "Decomposition",
    "Signal",
    "SignalError",
    "SignalPreprocessing",
    "emd",
    "load_recording",
    "vmd",
]
