"""Read one multichannel recording: WAV, MAT, CSV, NPY, NPZ, EDF or BDF -> `[C, T]` float64
and its rate.

Files hold time along the first axis (`[T]` or `[T, C]`, as sequence files do); a MATLAB row
vector `[1, T]` is read as one channel. WAV and EDF/BDF files carry their sample rate, and so
does a CSV whose first column is named as time with its unit (`split_time_column`: `time_ms`,
`Time (s)`); for the others it comes from the caller (the config's ``fs``). A CSV's time column
is its time axis, not a channel. Channels are known by name (`channel_names`): a CSV header's,
an EDF/BDF file's labels, else ch0, ch1, ...; a reader may name the ones to read, in its order.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io

from feature_extractors.errors import SignalError
from feature_extractors.signal.channels import channel_indices, default_names
from feature_extractors.signal.edf import EDF_SUFFIXES, edf_labels, edf_rate, read_edf

RECORDING_SUFFIXES = (".wav", ".mat", ".csv", ".npy", ".npz", *EDF_SUFFIXES)
_NAMED = (".csv", *EDF_SUFFIXES)  # files that name their channels: no shape rule decides them
NanPolicy = Literal["raise", "interpolate"]


_TIME_NAME = re.compile(
    r"(time|timestamp|t|seconds|secs?)(?:[\s_]*[(\[]?(s|sec|ms|us|µs|ns)[)\]]?)?"
)
_SECONDS_PER_UNIT = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _time_name(name: str) -> re.Match | None:
    return _TIME_NAME.fullmatch(name.strip().strip('"').strip().lower())


def _seconds_per_unit(match: re.Match) -> float | None:
    """Seconds in a unit of the time column `match` names (None when the name gives none)."""
    unit = match.group(2) or ("s" if match.group(1).startswith("sec") else None)
    return _SECONDS_PER_UNIT.get(unit)


def split_time_column(
    name: str, rows: np.ndarray, path: str | Path
) -> tuple[np.ndarray, float | None]:
    """`rows [T, columns]` of the CSV at `path` whose first column is `name`, as its channels
    and the seconds in a unit of its time column. The first column is time when its name says
    so (`time`, `t`, `timestamp`, `Time (s)`, `time_ms`, `seconds`), it never decreases but
    rises (a logger that rounds its stamps repeats some; a single row is one stamp) and other
    columns follow; the unit is known only when the name gives it (else None). A column whose
    name gives no unit and that is not time so read is a channel (`t` for temperature); one
    whose name gives a unit is time or an error (stamps of two sessions, out of order, or
    all the same), never a channel, so that its name alone tells (`csv_columns`)."""
    match = _time_name(name)
    if match is None or rows.shape[1] < 2:
        return rows, None
    unit = _seconds_per_unit(match)
    steps = np.diff(rows[:, 0])
    if np.all(steps >= 0) and (steps.sum() > 0 or len(rows) == 1):  # one row: one stamp
        return rows[:, 1:], unit
    if unit is None:
        return rows, None
    fix = "or rename the column to read it as a channel."
    if np.any(steps < 0):
        row = int(np.argmax(steps < 0)) + 1  # the first row lower than the one before
        raise SignalError(
            f"{path}, line {row + 2}: the time column {name!r} falls from {rows[row - 1, 0]:g} "
            f"to {rows[row, 0]:g} (two recordings in one file, or rows out of order?). Split or "
            f"sort the file, {fix}"
        )
    raise SignalError(
        f"{path}: the time column {name!r} holds {rows[0, 0]:g} on every row. Write each row's "
        f"time, {fix}"
    )


def recorded_rate(path: str | Path, channels: Sequence[str] | None = None) -> float | None:
    """Sample rate the file at `path` stores: a WAV header's, an EDF/BDF file's (that of
    `channels`, all by default, which must share one), or the rate a CSV's time column steps at
    where its name gives the unit; None for other files. An unreadable file raises
    SignalError."""
    import wave

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        names = _csv_header(path)
        match = _time_name(names[0]) if names else None
        timed = match is not None and _seconds_per_unit(match) is not None
        return _read_csv(path)[1] if timed else None  # parsed only when the header gives a unit
    if suffix in EDF_SUFFIXES:
        return edf_rate(path, channels)
    if suffix != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as fh:
            return float(fh.getframerate())
    except (wave.Error, EOFError):  # float WAVs: the stdlib reader refuses them, scipy reads them
        return float(_read_wav(path)[0])


def _read_wav(path: Path) -> tuple[int, np.ndarray]:
    try:
        return scipy.io.wavfile.read(path)
    except Exception as err:  # scipy raises ValueError, EOFError, struct.error, ...
        raise SignalError(
            f"{path}: cannot read it as WAV ({type(err).__name__}: {err}). Fix or remove the file."
        ) from None


def load_recording(
    path: str | Path,
    fs: float | None = None,
    *,
    variable: str | None = None,
    channels: Sequence[str] | None = None,
    nan_policy: NanPolicy = "raise",
    own_rate: bool = False,
) -> tuple[np.ndarray, float]:
    """`(x [C, T] float64, fs)` of the recording at `path`.

    Args:
        path: a .wav, .mat, .csv (header row, one column per channel), .npy, .npz, .edf or
            .bdf file.
        fs: sample rate of files that do not store one; the rate a file stores (`recorded_rate`)
            must equal it (a CSV's time column within 1 %).
        variable: MAT/NPZ array to read (default: the only one in the file).
        channels: the channels to read, by name (`channel_names`), in this order (default: all).
        nan_policy: ``raise`` on NaN/Inf, or ``interpolate`` them linearly along time.
        own_rate: a file that stores its rate is read at that rate whatever `fs` (for a chain
            that resamples every file first).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    stored, names = None, None  # the rate the file stores, the names it gives its channels
    if suffix in EDF_SUFFIXES:
        data, stored, _ = read_edf(path, channels)  # the channels named, only
    elif suffix == ".wav":
        stored, data = _read_wav(path)
        data = _wav_to_float(data)
    elif suffix == ".csv":
        data, stored, names = _read_csv(path)
        if fs is not None and stored is not None and abs(stored - fs) > 0.01 * fs and not own_rate:
            raise SignalError(
                f"{path}: its time column steps at {stored:.6g} Hz but the data's sample rate is "
                f"{fs:g} Hz. Give the rate the file was recorded at as fs (data.signal.fs), or "
                "start the steps with `resample: {fs: ...}` so that every file is brought to "
                "one rate."
            )
    else:
        data = _read_array(path, suffix, variable)
    if suffix != ".csv" and stored is not None and fs is not None and stored != fs and not own_rate:
        raise SignalError(
            f"{path}: recorded at {stored:g} Hz but the data's sample rate is {fs:g} Hz. "
            "Resample the file, or start the steps with `resample: {fs: ...}` so that every "
            "file is brought to one rate."
        )
    if stored is not None and (fs is None or own_rate):
        fs = float(stored)
    if fs is None:
        stores = (
            "this CSV stores no sample rate (one whose first column is time with its unit, "
            "such as `time_ms` or `Time (s)`, does)"
            if suffix == ".csv"
            else f"{suffix} files do not store a sample rate"
        )
        raise SignalError(
            f"{path}: {stores}. Give the rate it was recorded at as fs: `--data.signal.fs HZ` "
            "(`fs:` under data.signal in a config; `decompose --fs HZ`)."
        )
    x = _as_channels_first(np.asarray(data), path)
    if channels is not None and suffix not in EDF_SUFFIXES:
        x = x[channel_indices(names or default_names(len(x)), channels, path)]
    return _handle_nan(x, path, nan_policy), float(fs)


def _wav_to_float(data: np.ndarray) -> np.ndarray:
    """Integer PCM to [-1, 1], as MATLAB's audioread does."""
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    if data.dtype.kind == "i":
        return data.astype(np.float64) / -np.iinfo(data.dtype).min
    return data.astype(np.float64)


def _read_array(path: Path, suffix: str, variable: str | None) -> np.ndarray:
    try:
        if suffix == ".mat":
            return _pick(read_mat(path), variable, path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return _pick({k: npz[k] for k in npz.files}, variable, path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
    except SignalError:
        raise
    except Exception as err:  # each reader has its own exception types
        raise SignalError(
            f"{path}: cannot read it ({type(err).__name__}: {err}). Fix or remove the file."
        ) from None
    raise SignalError(
        f"{path}: unknown file type {suffix!r}; recordings are {', '.join(RECORDING_SUFFIXES)}."
    )


def _header(line: str) -> list[str]:
    """The column names of a CSV header line; a name may be quoted (phyphox and spreadsheet
    exports quote theirs), and a quoted one may hold commas."""
    return [name.strip() for name in next(csv.reader([line.strip()]), [])]


def csv_columns(path: str | Path) -> list[str] | None:
    """The names of a CSV file's channels: its header's, less a first column that is the time
    axis (`split_time_column` decides: from the name where it gives a unit, else from the
    column's values, the one case that reads the file). None for a file that is not CSV, or
    cannot be read (`read_csv` says why)."""
    path = Path(path)
    names = _csv_header(path) if path.suffix.lower() == ".csv" else None
    match = None if names is None or len(names) < 2 else _time_name(names[0])
    if match is None:
        return names
    if _seconds_per_unit(match) is not None:  # time, or an error once the file is read
        return names[1:]
    try:
        return _read_csv(path)[2]
    except SignalError:
        return None


def channel_names(path: str | Path, channels: Sequence[str] | None = None) -> list[str] | None:
    """The names of the channels a recording is read as: `channels` when given (those are
    read, in that order), else those the file stores: a CSV header's (`csv_columns`), an
    EDF/BDF file's labels. None for other files, and for an unreadable one (reading it says
    why)."""
    if channels is not None:
        return list(channels)
    if Path(path).suffix.lower() in EDF_SUFFIXES:
        try:
            return edf_labels(path)
        except SignalError:
            return None
    return csv_columns(path)


def _csv_header(path: Path) -> list[str] | None:
    """The column names in a CSV file's header row; None when it cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return _header(fh.readline())
    except (OSError, UnicodeDecodeError):
        return None


def read_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The column names in a CSV file's header and the rows of numbers under it, `[rows,
    columns]` float64 (a time column of dates keeps its steps). numpy's C parser reads the
    file; one it rejects is read again line by line, and the SignalError names the first bad
    line. A UTF-8 byte-order mark (Excel's habit) is not part of the first name."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            lines = fh.readlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SignalError(
            f"{path}: cannot read it ({type(err).__name__}: {err}). Fix or remove the file."
        ) from None
    names = _header(lines[0]) if lines else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's notice about a header-only file
        try:
            rows = np.loadtxt(lines[1:], delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError:
            rows = None
    if rows is not None and rows.shape[0] > 0 and rows.shape[1] == len(names):
        return names, rows
    values = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.strip().split(",")
        if len(cells) != len(names):
            raise SignalError(
                f"{path}, line {line_no}: {len(cells)} values but the header names "
                f"{len(names)} columns. Every row needs one value per column."
            )
        try:
            values.append([float(c.strip().strip('"')) for c in cells])  # "1.5" too
        except ValueError as err:
            separator = next((s for s in (";", "\t") if s in line), None)
            fix = (
                f"the values are separated by {separator!r}: save the file with commas"
                if separator
                else "the first row is the header of column names; every later row holds "
                "numbers only"
            )
            raise SignalError(
                f"{path}, line {line_no}: non-numeric value ({err}); {fix}."
            ) from None
    if not values:
        raise SignalError(f"{path}: has no rows of numbers under its header; add some.")
    return names, np.asarray(values, dtype=np.float64)


def _read_csv(path: Path) -> tuple[np.ndarray, float | None, list[str]]:
    """The channels `[T, C]` under a CSV's header, the rate its time column steps at (None
    without one, or when the header does not name its unit) and the channels' names."""
    names, data = read_csv(path)
    channels, unit = split_time_column(names[0], data, path)
    span = (data[-1, 0] - data[0, 0]) * unit if unit is not None and len(data) > 1 else 0.0
    # the mean step's rate, to 6 digits: timestamps printed in ms give 50, not 50.00000000001
    rate = float(f"{(len(data) - 1) / span:.6g}") if span > 0 else None
    return channels, rate, names[len(names) - channels.shape[1] :]


_MATLAB_NUMBERS = {"double", "single", "logical", "int8", "uint8", "int16", "uint16", "int32",
                   "uint32", "int64", "uint64"}  # fmt: skip


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """The variables of a MATLAB file by name: `scipy.io.loadmat` for v7 and older, h5py for
    v7.3 (HDF5; its numeric variables only)."""
    try:
        arrays = scipy.io.loadmat(path)
    except NotImplementedError:  # HDF5-based v7.3, which scipy does not read
        return _read_mat73(Path(path))
    return {k: v for k, v in arrays.items() if not k.startswith("__")}


def _read_mat73(path: Path) -> dict[str, np.ndarray]:
    """The numeric variables of a MATLAB v7.3 file (HDF5, read by h5py), shaped as in MATLAB:
    HDF5 holds them transposed."""
    try:
        import h5py
    except ImportError:
        raise SignalError(
            f"{path}: is a MATLAB v7.3 (HDF5) file; install h5py to read it (pip install "
            "'seqclass[mat]'), or save it with save(..., '-v7')."
        ) from None
    with h5py.File(path, "r") as mat:
        return {
            name: np.asarray(item).T
            for name, item in mat.items()
            if isinstance(item, h5py.Dataset)
            and item.attrs.get("MATLAB_class", b"").decode() in _MATLAB_NUMBERS
        }


def _pick(arrays: dict[str, np.ndarray], variable: str | None, path: Path) -> np.ndarray:
    if variable is not None:
        if variable not in arrays:
            raise SignalError(
                f"{path}: has no variable {variable!r}; it holds {sorted(arrays)}. Name one of "
                "those as the variable (`--data.signal.variable NAME`; `decompose --variable`)."
            )
        return arrays[variable]
    if len(arrays) != 1:
        raise SignalError(
            f"{path}: holds {len(arrays)} variables {sorted(arrays)}; name the one to read "
            "(`--data.signal.variable NAME`; `decompose --variable NAME`)."
        )
    return next(iter(arrays.values()))


def _as_channels_first(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype.kind not in "fiub":
        raise SignalError(f"{path}: holds {data.dtype} values; a recording holds numbers.")
    named = path.suffix.lower() in _NAMED
    if data.ndim == 2 and data.shape[0] == 1 and not named:
        data = data[0]  # a row vector (MATLAB's habit): one channel; a CSV's columns are named
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or 0 in data.shape:
        raise SignalError(
            f"{path}: has shape {data.shape}; a recording is [T] or [T, channels] with T >= 1."
        )
    steps, channels = data.shape
    if channels > steps and not named:
        raise SignalError(
            f"{path}: holds a [{steps}, {channels}] array, which reads as {steps} time steps of "
            f"{channels} channels (time runs down the first axis). If its rows are channels "
            "(MATLAB's channels x samples), save it transposed: x.' in MATLAB, x.T in NumPy."
        )
    return np.ascontiguousarray(data.T, dtype=np.float64)


def _handle_nan(x: np.ndarray, path: Path, nan_policy: NanPolicy) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    channel, step = np.argwhere(bad)[0]
    if nan_policy != "interpolate":
        raise SignalError(
            f"{path}: {int(bad.sum())} NaN/Inf values (first at sample {step}, channel "
            f"{channel}). Clean the recording, or set nan_policy: interpolate to fill them "
            "linearly."
        )
    out = x.copy()
    steps = np.arange(x.shape[1])
    for c in range(x.shape[0]):
        good = ~bad[c]
        if not good.any():
            raise SignalError(
                f"{path}: channel {c} holds no finite value, so there is nothing to "
                "interpolate from. Remove the channel or the file."
            )
        out[c, bad[c]] = np.interp(steps[bad[c]], steps[good], x[c, good])
    return out
