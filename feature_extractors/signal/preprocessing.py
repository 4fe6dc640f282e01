"""A configurable chain of steps that turns one recording into a `[T, D]` sequence.

Written in YAML as a list of one-key mappings, applied in order::

    fs: 100
    steps:
      - detrend: {}
      - bandpass: {low: 0.5, high: 20}
      - vmd: {num_modes: 4, alpha: 2000}

Steps work on `[C, T]` arrays; some change the channels (``vmd``, ``emd``: C*K modes;
``spectrogram``: C*F frequency bins; ``hilbert``; ``window_stats``) or the time axis
(``resample``, ``spectrogram``, ``window_stats``), and the chain keeps track of the rate and the
time of the first step so that time-based labels can be placed on the output steps.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.signal
import torch

from feature_extractors.devices import parse_device
from feature_extractors.signal import filters
from feature_extractors.signal.channels import default_names
from feature_extractors.signal.emd import Method, emd
from feature_extractors.signal.io import (
    NanPolicy,
    SignalError,
    channel_names,
    load_recording,
    recorded_rate,
)
from feature_extractors.signal.vmd import vmd


@dataclass
class Signal:
    """Channels `data [C, T]` sampled at `fs` steps per second, first step at `t0` seconds."""

    data: np.ndarray
    fs: float
    t0: float = 0.0
    names: list[str] = field(default_factory=list)

    @property
    def times(self) -> np.ndarray:
        """Time of each step in seconds `[T]`."""
        return self.t0 + np.arange(self.data.shape[-1]) / self.fs

    def replaced(self, data: np.ndarray, suffixes: list[str] | None = None, **changes) -> Signal:
        """A copy with new data; each channel name gains `suffixes` when the channels multiply."""
        names = (
            self.names if suffixes is None else [f"{n}.{s}" for n in self.names for s in suffixes]
        )
        return replace(
            self, data=np.ascontiguousarray(data, dtype=np.float64), names=names, **changes
        )


def _detrend(s: Signal, type: Literal["linear", "constant"] = "linear") -> Signal:
    return s.replaced(scipy.signal.detrend(s.data, axis=-1, type=type))


def _lowpass(s: Signal, cutoff: float, order: int = 4) -> Signal:
    return s.replaced(filters.lowpass(s.data, s.fs, cutoff, order=order))


def _highpass(s: Signal, cutoff: float, order: int = 4) -> Signal:
    return s.replaced(filters.highpass(s.data, s.fs, cutoff, order=order))


def _bandpass(s: Signal, low: float, high: float, order: int = 4) -> Signal:
    return s.replaced(filters.bandpass(s.data, s.fs, low, high, order=order))


def _notch(s: Signal, freq: float, quality: float = 30.0) -> Signal:
    return s.replaced(filters.notch(s.data, s.fs, freq, quality=quality))


def _resample(s: Signal, fs: float) -> Signal:
    return s.replaced(filters.resample(s.data, s.fs, fs), fs=float(fs))


def _zscore(s: Signal) -> Signal:
    return s.replaced(filters.zscore(s.data))


def _spectrogram(s: Signal, nperseg: int = 64, hop: int = 32, log: bool = True) -> Signal:
    power, freqs, times = filters.spectrogram_frames(s.data, s.fs, nperseg, hop=hop, log=log)
    channels, bins, frames = power.shape
    return s.replaced(
        power.reshape(channels * bins, frames),
        [f"{f:g}Hz" for f in freqs],
        fs=s.fs / hop,
        t0=s.t0 + float(times[0]),
    )


HilbertOutput = Literal["envelope", "frequency"]


def _hilbert(s: Signal, outputs: tuple[HilbertOutput, ...] = ("envelope", "frequency")) -> Signal:
    made = {
        "envelope": lambda: filters.envelope(s.data),
        "frequency": lambda: filters.instantaneous_frequency(s.data, s.fs),
    }
    unknown = set(outputs) - set(made)
    if unknown:
        raise ValueError(f"hilbert outputs are 'envelope' and 'frequency', not {sorted(unknown)}.")
    stacked = np.stack([made[o]() for o in outputs], axis=1)  # [C, outputs, T]
    return s.replaced(stacked.reshape(-1, s.data.shape[-1]), list(outputs))


def _decomposed(s: Signal, modes: np.ndarray, residual: np.ndarray | None) -> Signal:
    """Modes `[C, K, T]` (and the residual `[C, T]`) as channels."""
    names = [f"mode{k}" for k in range(modes.shape[1])]
    if residual is not None:
        modes, names = np.concatenate([modes, residual[:, None]], axis=1), [*names, "residual"]
    return s.replaced(modes.reshape(-1, modes.shape[-1]), names)


def _vmd(s: Signal, num_modes: int = 5, residual: bool = False, **options) -> Signal:
    return _decompose_together([s], vmd, num_modes=num_modes, residual=residual, **options)[0]


def _emd(
    s: Signal, num_modes: int = 5, method: Method = "emd", residual: bool = False, **options
) -> Signal:
    return _decompose_together([s], emd, num_modes, residual, method=method, **options)[0]


def _decompose_together(
    signals: list[Signal],
    decompose: Callable,
    num_modes: int = 5,
    residual: bool = False,
    device: torch.device | str | None = None,
    **options,
) -> list[Signal]:
    """`decompose` (vmd, emd) over recordings of one shape and rate in one batched call."""
    stacked = torch.from_numpy(np.stack([s.data for s in signals]))
    result = decompose(
        stacked.to(device or "cpu"), num_modes=num_modes, fs=signals[0].fs, **options
    )
    modes, rest = result.modes.cpu().numpy(), result.residual.cpu().numpy()
    return [_decomposed(s, modes[i], rest[i] if residual else None) for i, s in enumerate(signals)]


WINDOW_STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda w: w.mean(-1),
    "std": lambda w: w.std(-1),
    "rms": lambda w: np.sqrt(np.square(w).mean(-1)),
    "peak": lambda w: np.abs(w).max(-1),
    "kurtosis": lambda w: _kurtosis(w),
}


def _kurtosis(windows: np.ndarray) -> np.ndarray:
    """Fisher's kurtosis of each window (`scipy.stats.kurtosis`'s default); NaN where flat."""
    mean = windows.mean(-1, keepdims=True)
    centred = windows - mean
    m2 = np.square(centred).mean(-1)
    m4 = np.square(np.square(centred)).mean(-1)
    flat = m2 <= np.square(np.finfo(windows.dtype).resolution * mean[..., 0])  # as scipy's
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, np.nan, m4 / np.square(m2) - 3.0)


def _window_stats(
    s: Signal, nperseg: int, hop: int | None = None, stats: tuple[str, ...] = ("mean", "std")
) -> Signal:
    hop = hop or nperseg
    length = s.data.shape[-1]
    if length < nperseg:
        raise ValueError(f"a signal of {length} samples is shorter than one window ({nperseg}).")
    unknown = set(stats) - set(WINDOW_STATS)
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)}; choose from {list(WINDOW_STATS)}.")
    windows = np.lib.stride_tricks.sliding_window_view(s.data, nperseg, axis=-1)[:, ::hop]
    values = np.stack([WINDOW_STATS[name](windows) for name in stats], axis=1)  # [C, S, N]
    return s.replaced(
        values.reshape(-1, values.shape[-1]),
        list(stats),
        fs=s.fs / hop,
        t0=s.t0 + (nperseg - 1) / 2 / s.fs,
    )


STEPS: dict[str, Callable[..., Signal]] = {
    "detrend": _detrend,
    "lowpass": _lowpass,
    "highpass": _highpass,
    "bandpass": _bandpass,
    "notch": _notch,
    "resample": _resample,
    "zscore": _zscore,
    "spectrogram": _spectrogram,
    "hilbert": _hilbert,
    "vmd": _vmd,
    "emd": _emd,
    "window_stats": _window_stats,
}
_OPEN_OPTIONS = {"vmd": vmd, "emd": emd}  # steps passing further options on to these
DECOMPOSITIONS = tuple(_OPEN_OPTIONS)  # steps that can run over many recordings at once
SETTINGS_VERSION = 2  # 2: vmd's defaults became vmdpy's (tau 0, grid start), in float32
_VMD_BEFORE_VERSION_2 = {"tau": 0.01, "init": "peaks", "dtype": "float64"}


@dataclass
class SignalPreprocessing:
    """How raw recordings become `[T, D]` sequences.

    Args:
        fs: sample rate of recordings that do not store one (CSV, NPY, NPZ, MAT). WAV files
            must match it; by default all of them must share the first one's rate. When the
            first step is ``resample``, every file is resampled from its own rate.
        steps: one-key mappings ``{step: {option: value}}`` applied in order; steps:
            detrend, lowpass, highpass, bandpass, notch, resample, zscore, spectrogram,
            hilbert, vmd, emd, window_stats.
        variable: array to read from MAT/NPZ files holding several.
        channels: the channels to read, by name, in this order (default: all): a CSV header's
            names, an EDF/BDF file's labels, else ch0, ch1, ... Files may then hold them in
            any order, and more; an EDF file whose channels have different rates needs it.
        nan_policy: ``raise`` on NaN/Inf in a recording, or ``interpolate`` them.
        workers: processes that load recordings and run the steps before the first ``vmd`` or
            ``emd`` (0: the main process; None: the rank's share of the CPU cores less two).
        device: where ``vmd`` runs (``cpu``, ``cuda``: each rank's own GPU, ``cuda:1``).
            `workers` and `device` change how fast, not what: they are not part of `settings()`.
    """

    fs: float | None = None
    steps: list[dict] = field(default_factory=list)
    variable: str | None = None
    channels: list[str] | None = None
    nan_policy: NanPolicy = "raise"
    workers: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        self.steps = [_check_step(step, i) for i, step in enumerate(self.steps)]
        if self.nan_policy not in ("raise", "interpolate"):
            raise ValueError(f"nan_policy is 'raise' or 'interpolate', not {self.nan_policy!r}.")
        if self.workers is not None and self.workers < 0:
            raise ValueError(
                f"signal.workers is a count of processes (0 or more), not {self.workers}."
            )
        if self.channels is not None and (
            isinstance(self.channels, str) or not self.channels
            or len(set(self.channels)) < len(self.channels)
        ):  # fmt: skip
            raise ValueError(
                f"signal.channels is a list of channel names, each once, not {self.channels!r}: "
                "`--data.signal.channels '[EEG Fpz-Cz, EOG horizontal]'`."
            )

    def torch_device(self) -> torch.device:
        """`device` as torch's; plain ``cuda`` is this process's local rank's GPU."""
        self.check_device()
        device = torch.device(self.device or "cpu")
        if device.type == "cuda" and device.index is None:
            local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or 0
            device = torch.device("cuda", int(local) % torch.cuda.device_count())
        return device

    def check_device(self) -> None:
        """Raise a ValueError saying what to change when `device` cannot be used here."""
        if self.device is None:
            return
        try:
            parse_device(self.device)
        except ValueError as err:
            raise ValueError(
                f"signal.device {err}; drop the option (or set it to cpu) to run the chain on "
                "the CPU."
            ) from None

    @property
    def resamples_first(self) -> bool:
        """True when every file is brought to one rate first, whatever its own."""
        return bool(self.steps) and next(iter(self.steps[0])) == "resample"

    @property
    def batch_from(self) -> int:
        """Index of the first decomposition step (the number of steps when none): the steps
        before it run on each recording alone, the rest on many recordings of one shape."""
        names = [next(iter(step)) for step in self.steps]
        return next((i for i, name in enumerate(names) if name in DECOMPOSITIONS), len(names))

    @classmethod
    def from_settings(cls, settings: dict, **run_options) -> SignalPreprocessing:
        """The chain that `settings()` describes (as stored in a checkpoint), with `workers`
        and `device` from `run_options`. Settings written before `SETTINGS_VERSION` 2 keep the
        vmd defaults they were made with."""
        kept = {k: v for k, v in settings.items() if k not in ("kind", "version")}
        if settings.get("version", 1) < 2:
            kept["steps"] = [
                {"vmd": {**_VMD_BEFORE_VERSION_2, **options}} if name == "vmd" else {name: options}
                for step in kept.get("steps", [])
                for name, options in step.items()
            ]
        return cls(**kept, **run_options)

    def settings(self) -> dict:
        """Plain JSON description, stored beside cached features and in checkpoints."""
        settings = {
            "kind": "signal",
            "version": SETTINGS_VERSION,
            "fs": self.fs,
            "steps": self.steps,
            "variable": self.variable,
            "nan_policy": self.nan_policy,
        }
        if self.channels is not None:  # absent otherwise: the caches made before it still match
            settings["channels"] = list(self.channels)
        return settings

    def for_files(self, paths: list[Path]) -> SignalPreprocessing:
        """These settings with `fs` fixed: unless given (or resampled first), the rate the first
        readable file that stores one holds (a WAV's, an EDF's, a CSV time column's:
        `recorded_rate`); an unreadable one fails on its own, named, when it is preprocessed.

        Every later file must then match it, so files of different rates are never mixed.
        """
        if self.fs is not None or self.resamples_first:
            return self
        for path in paths:
            try:
                rate = recorded_rate(path, self.channels)
            except SignalError:
                continue
            if rate is not None:
                return replace(self, fs=rate)
        return self

    def apply(self, signal: Signal, start: int = 0, stop: int | None = None) -> Signal:
        """Run steps `start` to `stop` (all by default) on `signal`; a step that fails or whose
        output holds NaN or Inf raises a ValueError naming it."""
        for index in range(start, len(self.steps) if stop is None else stop):
            ((name, options),) = self.steps[index].items()
            try:
                signal = STEPS[name](signal, **options)
            except ValueError as err:
                raise ValueError(f"step {name}: {err}") from None
            _check_finite(signal, index, name)
        return signal

    def apply_together(
        self, signals: list[Signal], compile: bool | None = None
    ) -> list[Signal | Exception]:
        """Run the steps from `batch_from` on recordings of one shape and rate (as `head` leaves
        them): the decomposition in one batched call (on `device`), the later steps one by one.
        Each item is that recording's result, or the error it met (a ValueError naming the
        step, or the solver's own: out of memory, ...). `compile` is vmd's, unless the step
        sets it: a run that fixes it gets the same features however its recordings are
        batched."""
        start = self.batch_from
        if start == len(self.steps):
            return list(signals)
        ((name, options),) = self.steps[start].items()
        decompose = _OPEN_OPTIONS[name]
        if name == "vmd":
            options = {"compile": compile, **options, "device": self.torch_device()}
        try:
            decomposed = _decompose_together(signals, decompose, **options)
        except Exception as err:
            if len(signals) > 1:  # one bad recording, or too many at once: each alone
                return [r for s in signals for r in self.apply_together([s], compile)]
            return [ValueError(f"step {name}: {err}") if isinstance(err, ValueError) else err]
        results: list[Signal | Exception] = []
        for signal in decomposed:
            try:
                _check_finite(signal, start, name)
                results.append(self.apply(signal, start + 1))
            except Exception as err:  # this recording's alone
                results.append(err)
        return results

    def head(self, path: str | Path) -> Signal:
        """Load the recording at `path` and run the steps before `batch_from`."""
        data, fs = load_recording(
            path,
            self.fs,
            variable=self.variable,
            channels=self.channels,
            nan_policy=self.nan_policy,
            own_rate=self.resamples_first,
        )
        names = channel_names(path, self.channels)
        if names is None or len(names) != len(data):
            names = default_names(len(data))
        try:
            return self.apply(Signal(data, fs, 0.0, names), stop=self.batch_from)
        except ValueError as err:
            raise SignalError(f"{path}: {err}") from None

    def process(self, path: str | Path) -> Signal:
        """Load the recording at `path` and run the steps; errors name the file and the fix."""
        (result,) = self.apply_together([self.head(path)])
        if isinstance(result, ValueError):
            raise SignalError(f"{path}: {result}")
        if isinstance(result, Exception):
            raise result
        return result


def _check_finite(signal: Signal, index: int, name: str) -> None:
    bad = ~np.isfinite(signal.data)
    if bad.any():
        channel = np.argwhere(bad)[0][0]
        raise ValueError(
            f"step {index + 1} ({name}) produced NaN or Inf (first in channel "
            f"{signal.names[channel] if signal.names else channel}): the input is "
            "constant or too short for it there. Drop the step, or check the recording."
        )


def _check_step(step: dict, index: int) -> dict:
    """`{name: options}` with options a dict, or a clear error about what is wrong."""
    if not isinstance(step, dict) or len(step) != 1:
        raise ValueError(
            f"step {index + 1} is {step!r}; each step is a one-key mapping like "
            "`bandpass: {low: 0.5, high: 20}`."
        )
    ((name, options),) = step.items()
    if name not in STEPS:
        raise ValueError(f"step {index + 1}: unknown step {name!r}; steps are {list(STEPS)}.")
    options = dict(options or {})
    accepted = [p for p in inspect.signature(STEPS[name]).parameters if p not in ("s", "options")]
    if name in _OPEN_OPTIONS:
        params = inspect.signature(_OPEN_OPTIONS[name]).parameters
        accepted += [p for p in params if p not in ("x", "fs") and p not in accepted]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"step {index + 1} ({name}): unknown option(s) {unknown}; it takes {accepted}."
        )
    return {name: options}
