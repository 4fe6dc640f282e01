"""EDF and BDF recordings (European Data Format: EEG, ECG, sleep studies), read by edfio.

Each ordinary signal of a file is a channel, known by its label, in physical units; EDF+
annotations are not channels. A file may sample its signals at different rates: the channels
read together must share one, so such a file is read with the channels of one rate named.
Whether a file is EDF or BDF (24-bit) comes from its header, not its suffix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from feature_extractors.errors import SignalError
from feature_extractors.signal.channels import channel_indices

EDF_SUFFIXES = (".edf", ".bdf")
_BDF_MAGIC = b"\xffBIOSEMI"


def _open(path: Path):
    """The file's edfio `Edf` or `Bdf` (its data read when first asked for)."""
    try:
        import edfio
    except ImportError:  # a core dependency; an environment may still lack it
        raise SignalError(f"{path}: EDF/BDF files are read by edfio: pip install edfio") from None
    bdf = path.suffix.lower() == ".bdf"
    try:
        with path.open("rb") as fh:
            bdf = fh.read(len(_BDF_MAGIC)) == _BDF_MAGIC
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            recording = (edfio.read_bdf if bdf else edfio.read_edf)(path)
    except Exception as err:  # edfio raises ValueError, IndexError, ... on a bad header
        raise SignalError(
            f"{path}: cannot read it as {'BDF' if bdf else 'EDF'} ({type(err).__name__}: {err}). "
            "Fix or remove the file."
        ) from None
    if caught:  # a truncated file: edfio reads the whole data records it finds, and says so
        said = " ".join(dict.fromkeys(str(warning.message) for warning in caught))
        warnings.warn(f"{path}: {said}", UserWarning, stacklevel=3)
    return recording


def edf_labels(path: str | Path) -> list[str]:
    """The label of each channel of the EDF/BDF file at `path`, in the file's order; an
    unreadable file raises SignalError."""
    return [signal.label for signal in _open(Path(path)).signals]


def edf_rate(path: str | Path, channels: Sequence[str] | None = None) -> float:
    """The sample rate (Hz) of the EDF/BDF file's channels labelled `channels` (all by
    default), from its header; `read_edf`'s SignalErrors."""
    path = Path(path)
    return float(_chosen(_open(path), channels, path)[0].sampling_frequency)


def read_edf(
    path: str | Path, channels: Sequence[str] | None = None
) -> tuple[np.ndarray, float, list[str]]:
    """`(x [T, C] float64 in physical units, fs, labels)` of the EDF/BDF file at `path`: the
    channels labelled `channels`, in that order (all by default), which must share one
    sample rate. A SignalError names the file and the fix for mixed rates, a discontinuous
    (EDF+D) recording, a file with no channels or an unreadable one."""
    path = Path(path)
    recording = _open(path)
    signals = _chosen(recording, channels, path)
    try:
        continuous = recording.is_continuous
        data = np.stack([signal.data for signal in signals], axis=1)
    except Exception as err:  # no whole data record
        raise SignalError(
            f"{path}: cannot read its samples ({type(err).__name__}: {err}). Fix or remove "
            "the file."
        ) from None
    if not continuous:
        raise SignalError(
            f"{path}: is a discontinuous recording (EDF+D): its data records have gaps in "
            "time. Export each continuous part as a file of its own (EDF+C)."
        )
    return data, float(signals[0].sampling_frequency), [s.label for s in signals]


def _chosen(recording, channels: Sequence[str] | None, path: Path) -> list:
    """The recording's signals labelled `channels` (all by default); a SignalError when there
    are none or their rates differ, naming channels of one rate to read."""
    signals = list(recording.signals)
    if channels is not None:
        signals = [signals[i] for i in channel_indices([s.label for s in signals], channels, path)]
    if not signals:
        raise SignalError(f"{path}: holds no signals, only annotations; a recording needs one.")
    rates: dict[float, list[str]] = {}
    for signal in signals:
        rates.setdefault(float(signal.sampling_frequency), []).append(signal.label)
    if len(rates) > 1:
        listed = "; ".join(f"{fs:g} Hz: {', '.join(names)}" for fs, names in rates.items())
        first = ", ".join(next(iter(rates.values())))
        raise SignalError(
            f"{path}: its channels are sampled at different rates ({listed}). Name channels of "
            f"one rate to read: `--data.signal.channels '[{first}]'` (`channels:` under "
            "data.signal in a config)."
        )
    return signals
