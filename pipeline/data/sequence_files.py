"""Read and write `[T, D]` sequence files: the contract between extractors and the classifier.

A sequence file holds one sample as a 2-D float array, time along the first axis:
``.npy``, ``.npz`` and ``.mat`` (array ``features``, or the only array), ``.pt`` (a tensor, or a
dict with ``features``) or ``.csv`` (a header row of channel names, then one row per time step; a
first column named as time is the time axis, not a channel).
A folder written by an extractor also holds ``feature_settings.json``: how raw inputs became
these sequences, so that a trained model can apply the same steps to new raw inputs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from feature_extractors.signal.io import SignalError, read_csv, read_mat, split_time_column
from pipeline.core.errors import SequenceDataError, UserError  # noqa: F401 (the old name)

SEQUENCE_SUFFIXES = (".npy", ".npz", ".mat", ".pt", ".csv")
FEATURE_SETTINGS_FILE = "feature_settings.json"
# the end of a note on sequences whose row count is the channel count another has or expects
TRANSPOSE_FIX = (
    "if the rows are channels (MATLAB's channels x time), save each sample transposed, x.' in "
    "MATLAB or x.T in NumPy: time runs down the first axis."
)


def write_feature_settings(folder: str | Path, settings: dict) -> Path:
    """Write `folder/feature_settings.json` (plain JSON: names, numbers, lists)."""
    path = Path(folder) / FEATURE_SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    return path


def read_feature_settings(root: str | Path) -> dict | None:
    """The settings an extractor wrote for the data under `root` (a folder or a manifest CSV)."""
    root = Path(root)
    path = (root if root.is_dir() else root.parent) / FEATURE_SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path}: not valid JSON ({err}). Re-run the extraction that wrote it, or delete it."
        ) from None


def load_sequence(path: str | Path) -> np.ndarray:
    """Load one sample as a finite float32 array of shape `[T, D]`, `T >= 1`.

    A 1-D array, and a bare `[1, N]` one (a row vector), is read as a single channel. Raises
    `UserError` naming the file when it cannot be read, is not numeric, has the wrong
    rank, is empty or holds NaN/Inf.
    """
    path = Path(path)
    try:
        array = _read_array(path)
    except UserError:
        raise
    except SignalError as err:  # the CSV reader's message names the file and the line
        raise UserError(str(err)) from None
    except Exception as err:  # every reader has its own exception types
        raise UserError(
            f"{path}: cannot read it as a sequence ({type(err).__name__}: {err}). "
            f"Fix or remove the file; sequence files are {', '.join(SEQUENCE_SUFFIXES)} arrays "
            "of shape [T, channels]."
        ) from err
    return checked_sequence(array, str(path))


def looks_channels_first(sequences: list[np.ndarray], looked_at: int = 64) -> bool:
    """Whether `[T, D]` sequences (the first `looked_at`) correlate far more from one channel to
    the next than from one step to the next, mean lag-one correlations 0.4 apart: channels x
    time arrays (sktime's and aeon's panels, MATLAB's sequences) read as time x channels.
    Features of video frames, whose channels have no order, correlate from step to step."""

    def lag_one(rows: np.ndarray) -> list[float]:  # along each row, centred
        rows = rows - rows.mean(-1, keepdims=True)
        energy = (rows * rows).sum(-1)
        kept = energy > 0
        return ((rows[:, 1:] * rows[:, :-1]).sum(-1)[kept] / energy[kept]).tolist()

    across, along = [], []
    for x in sequences[:looked_at]:
        x = np.asarray(x, dtype=np.float64)
        across += lag_one(x)
        along += lag_one(x.T)
    return bool(across and along) and np.mean(across) - np.mean(along) > 0.4


def checked_sequence(array: np.ndarray, name: str) -> np.ndarray:
    """`array` as a finite float32 `[T, D]` sequence, `T >= 1` (a 1-D array is one channel);
    a `UserError` naming it (`name`: its file, or its place in a list) when it is not numeric,
    has the wrong rank, is empty or holds NaN/Inf."""
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise UserError(
            f"{name}: holds {array.dtype} values, not numbers. Store a numeric [T, channels] array."
        )
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise UserError(
            f"{name}: has shape {tuple(array.shape)}; a sequence must be [T, channels] (2-D)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(
            f"{name}: is empty (shape {tuple(array.shape)}); leave it out, or give it at least "
            "one time step and one channel."
        )
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise UserError(
            f"{name}: contains NaN or Inf (first at time step {bad[0]}, channel {bad[1]}). "
            "Clean or interpolate the recording, or leave it out."
        )
    return array


def sequence_shape(path: str | Path) -> tuple[int, int]:
    """`(T, D)` of a sequence file, as `load_sequence` reads it (a row vector is one channel);
    reads only the header for `.npy` files."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            array = _row_vector_as_column(np.load(path, mmap_mode="r", allow_pickle=False))
        except Exception:
            array = None  # let load_sequence produce the full diagnosis
        if array is not None and array.ndim in (1, 2) and 0 not in array.shape:
            return (array.shape[0], array.shape[1] if array.ndim == 2 else 1)
    return load_sequence(path).shape


def row_vector_note(path: str | Path) -> str:
    """For a file whose bare `[1, N]` array is read as a row vector (N steps of one channel),
    a note that says so and how to store one step of N channels instead; else ""."""
    try:
        array, bare = _read_stored(Path(path))
    except Exception:
        return ""
    if not bare or array.ndim != 2 or array.shape[0] != 1 or array.shape[1] < 2:
        return ""
    n = array.shape[1]
    return (
        f"{Path(path).name} holds a [1, {n}] array, read as a row vector ({n} steps of one "
        f"channel): store one step of {n} channels as an .npz's `features` array or a CSV row."
    )


def save_sequence(
    path: str | Path, features: np.ndarray | torch.Tensor, **extra: np.ndarray
) -> None:
    """Write `features` `[T, D]` (plus named extra arrays) to `path` (.npz) atomically."""
    save_npz(path, features=np.asarray(features, dtype=np.float32), **extra)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write named arrays to `path` (.npz) so that it appears complete or not at all.

    The arrays go to a temporary file in the same folder, which is then renamed: an
    interrupted run never leaves a truncated file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0o600; caches are shared between users
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_array(path: Path) -> np.ndarray:
    array, bare = _read_stored(path)
    return _row_vector_as_column(array) if bare else array


def _read_stored(path: Path) -> tuple[np.ndarray, bool]:
    """The array a sequence file stores, and whether it is bare (not a `features` array or a
    CSV's named columns), so that a `[1, N]` one is a row vector."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise UserError(f"{path}: is a zero-byte file; remove it or write the sample again.")
    if suffix == ".npy":
        return np.load(path, allow_pickle=False), True
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return _named_or_only(npz, path)  # reads only the array it returns
    if suffix == ".mat":
        return _named_or_only(read_mat(path), path)
    if suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        named = isinstance(obj, dict) and "features" in obj
        obj = obj["features"] if named else obj
        if not isinstance(obj, torch.Tensor):
            raise UserError(
                f"{path}: holds a {type(obj).__name__}; save a tensor or {{'features': tensor}}."
            )
        return (obj.float() if obj.is_floating_point() else obj).numpy(), not named  # bf16: float
    if suffix == ".csv":
        return _read_csv(path), False
    raise UserError(
        f"{path}: unknown file type {suffix!r}; use one of {', '.join(SEQUENCE_SUFFIXES)}."
    )


def _named_or_only(arrays: Mapping[str, np.ndarray], path: Path) -> tuple[np.ndarray, bool]:
    """The `features` array of an .npz or .mat file, else its only one (then bare)."""
    if "features" in arrays:
        return arrays["features"], False
    if len(arrays) == 1:
        return next(iter(arrays.values())), True
    raise UserError(f"{path}: holds arrays {sorted(arrays)}; name the sample array 'features'.")


def _row_vector_as_column(array: np.ndarray) -> np.ndarray:
    """A bare `[1, N]` array is a row vector (MATLAB's habit): N steps of one channel, as the
    signal loader reads it. `features` arrays and CSV files keep their rows as steps."""
    return array.T if array.ndim == 2 and array.shape[0] == 1 else array


def _read_csv(path: Path) -> np.ndarray:
    """The channels under the header: a first column named as time (`split_time_column`) is
    the time axis, not a channel."""
    names, rows = read_csv(path)
    return split_time_column(names[0], rows, path)[0]
