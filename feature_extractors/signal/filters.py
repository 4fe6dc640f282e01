"""SciPy preprocessing as plain functions over arrays (`fs=` in Hz, `axis=-1` is time).

Zero-phase Butterworth and notch filters (`sosfiltfilt`), polyphase resampling, z-scoring,
log-power spectrogram frames and the Hilbert envelope and instantaneous frequency. Impossible
settings raise `ValueError` saying what to change; callers add the file name.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Literal

import numpy as np
import scipy.signal


def butter_filter(
    x: np.ndarray,
    fs: float,
    cutoff: float | tuple[float, float],
    *,
    btype: Literal["lowpass", "highpass", "bandpass", "bandstop"],
    order: int = 4,
    axis: int = -1,
) -> np.ndarray:
    """Zero-phase Butterworth filter: `cutoff` in Hz (a pair for band-pass and band-stop)."""
    edges = np.atleast_1d(np.asarray(cutoff, dtype=float))
    nyquist = fs / 2
    if np.any(edges <= 0) or np.any(edges >= nyquist):
        raise ValueError(
            f"{btype} cutoff {cutoff} Hz must lie strictly between 0 and the Nyquist frequency "
            f"{nyquist:g} Hz (fs={fs:g}); lower the cutoff or resample less."
        )
    if len(edges) == 2 and edges[0] >= edges[1]:
        raise ValueError(f"{btype} needs low < high, got {cutoff} Hz.")
    sos = _butter_sos(order, tuple(edges.tolist()), btype, float(fs))
    return _sosfiltfilt(sos, x, axis, f"order-{order} {btype}")


@functools.lru_cache(maxsize=64)
def _butter_sos(order: int, edges: tuple[float, ...], btype: str, fs: float) -> np.ndarray:
    """The filter's second-order sections, designed once per setting (not per recording)."""
    cutoff = edges if len(edges) == 2 else edges[0]
    return scipy.signal.butter(order, cutoff, btype=btype, fs=fs, output="sos")


def lowpass(
    x: np.ndarray, fs: float, cutoff: float, *, order: int = 4, axis: int = -1
) -> np.ndarray:
    """Keep frequencies below `cutoff` Hz."""
    return butter_filter(x, fs, cutoff, btype="lowpass", order=order, axis=axis)


def highpass(
    x: np.ndarray, fs: float, cutoff: float, *, order: int = 4, axis: int = -1
) -> np.ndarray:
    """Keep frequencies above `cutoff` Hz (removes drift)."""
    return butter_filter(x, fs, cutoff, btype="highpass", order=order, axis=axis)


def bandpass(
    x: np.ndarray, fs: float, low: float, high: float, *, order: int = 4, axis: int = -1
) -> np.ndarray:
    """Keep frequencies between `low` and `high` Hz (each edge gets `order` poles)."""
    return butter_filter(x, fs, (low, high), btype="bandpass", order=order, axis=axis)


def notch(
    x: np.ndarray, fs: float, freq: float, *, quality: float = 30.0, axis: int = -1
) -> np.ndarray:
    """Remove a narrow band around `freq` Hz (mains hum); bandwidth is `freq / quality`."""
    if not 0 < freq < fs / 2:
        raise ValueError(
            f"notch frequency {freq} Hz must lie strictly between 0 and the Nyquist frequency "
            f"{fs / 2:g} Hz (fs={fs:g})."
        )
    return _sosfiltfilt(
        _notch_sos(float(freq), float(quality), float(fs)), x, axis, f"{freq:g} Hz notch"
    )


@functools.lru_cache(maxsize=64)
def _notch_sos(freq: float, quality: float, fs: float) -> np.ndarray:
    return scipy.signal.tf2sos(*scipy.signal.iirnotch(freq, quality, fs=fs))


def resample(x: np.ndarray, fs: float, target_fs: float, *, axis: int = -1) -> np.ndarray:
    """Polyphase resampling from `fs` to `target_fs` (anti-aliased; ratio within 1e-3)."""
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(x)
    if ratio == 0:
        raise ValueError(f"cannot resample {fs:g} Hz to {target_fs:g} Hz.")
    up, down = ratio.numerator, ratio.denominator
    return scipy.signal.resample_poly(x, up, down, axis=axis, window=_resample_fir(up, down))


@functools.lru_cache(maxsize=64)
def _resample_fir(up: int, down: int) -> np.ndarray:
    """`resample_poly`'s own anti-aliasing filter (Kaiser, beta 5), designed once per ratio."""
    rate = max(up, down)
    return scipy.signal.firwin(20 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def zscore(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Zero mean, unit variance along `axis`; a constant signal becomes zeros."""
    x = np.asarray(x, dtype=float)
    std = x.std(axis=axis, keepdims=True)
    return (x - x.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)


def spectrogram_frames(
    x: np.ndarray, fs: float, nperseg: int = 64, *, hop: int = 32, log: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short-time power spectra of `x [..., T]`: `(power [..., F, N], freqs [F], times [N])`.

    Hann windows of `nperseg` samples every `hop` samples; `times` are window centres in seconds.
    With `log`, power is ``log10(power + tiny)``, the scale networks learn best from.
    """
    length = np.shape(x)[-1]
    if length < nperseg:
        raise ValueError(
            f"a signal of {length} samples is shorter than one spectrogram window ({nperseg}); "
            "use a smaller nperseg or longer recordings."
        )
    if not 0 < hop <= nperseg:
        raise ValueError(f"hop must be in 1..nperseg ({nperseg}), got {hop}.")
    freqs, times, power = scipy.signal.spectrogram(
        x, fs=fs, window="hann", nperseg=nperseg, noverlap=nperseg - hop, axis=-1
    )
    if log:
        power = np.log10(power + np.finfo(float).tiny)
    return power, freqs, times


def envelope(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Amplitude envelope: magnitude of the analytic signal (Hilbert transform)."""
    return np.abs(scipy.signal.hilbert(x, axis=axis))


def instantaneous_frequency(x: np.ndarray, fs: float, axis: int = -1) -> np.ndarray:
    """Instantaneous frequency in Hz from the analytic signal's unwrapped phase, same length."""
    phase = np.unwrap(np.angle(scipy.signal.hilbert(x, axis=axis)), axis=axis)
    freq = np.diff(phase, axis=axis) * fs / (2 * np.pi)
    first = np.take(freq, [0], axis=axis)
    return np.concatenate([first, freq], axis=axis)


def _sosfiltfilt(sos: np.ndarray, x: np.ndarray, axis: int, name: str) -> np.ndarray:
    # sosfiltfilt's default padding: 3 * (2 * sections + 1 - trailing zero coefficients)
    zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    padlen = 3 * (2 * len(sos) + 1 - zeros)
    length = np.shape(x)[axis]
    if length <= padlen:
        raise ValueError(
            f"a signal of {length} samples is too short for the {name} filter, which pads "
            f"{padlen} samples at each end; use a lower order or longer recordings."
        )
    return scipy.signal.sosfiltfilt(sos, x, axis=axis)
