"""SciPy steps against analytic answers: tones kept or removed, rates, envelopes, frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from feature_extractors.signal import filters

FS = 1000.0
T = np.arange(2000) / FS
MID = slice(200, -200)  # away from the filters' edge transients


def tone(freq: float, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * T)


@pytest.mark.parametrize(
    ("name", "kwargs", "kept", "removed"),
    [
        ("lowpass", {"cutoff": 20}, 5, 100),
        ("highpass", {"cutoff": 50}, 100, 5),
        ("bandpass", {"low": 30, "high": 70}, 50, 5),
    ],
)
def test_butterworth_keeps_the_passband_and_removes_the_stopband(name, kwargs, kept, removed):
    x = np.stack([tone(kept) + tone(removed), 2 * tone(kept) - tone(removed)])  # [C, T]
    y = getattr(filters, name)(x, FS, **kwargs)
    assert y.shape == x.shape
    assert_allclose(y[:, MID], np.stack([tone(kept), 2 * tone(kept)])[:, MID], atol=0.02)


def test_filter_works_along_the_given_axis():
    x = np.stack([tone(5) + tone(100), tone(5)], axis=1)  # [T, C]
    y = filters.lowpass(x, FS, 20, axis=0)
    assert_allclose(y[MID, 0], tone(5)[MID], atol=0.02)


def test_notch_removes_mains_hum_only():
    y = filters.notch(tone(10) + tone(50, 0.5), FS, freq=50)
    settled = slice(600, -600)  # a narrow notch rings for a few hundred ms at the ends
    assert_allclose(y[settled], tone(10)[settled], atol=0.02)


def test_resample_changes_the_length_and_keeps_the_tone():
    y = filters.resample(tone(10), FS, 250)
    assert y.shape == (500,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.fft.rfftfreq(500, 1 / 250)[spectrum.argmax()] == pytest.approx(10, abs=0.5)
    assert_allclose(filters.resample(tone(10), FS, FS), tone(10))


def test_zscore_and_constant_channels():
    x = np.stack([3 + 2 * tone(5), np.full_like(T, 7.0)])
    z = filters.zscore(x)
    assert_allclose(z[0].mean(), 0, atol=1e-12)
    assert_allclose(z[0].std(), 1)
    assert_allclose(z[1], 0)


def test_spectrogram_peak_and_window_centres():
    power, freqs, times = filters.spectrogram_frames(tone(125), FS, nperseg=64, hop=16)
    assert power.shape == (33, len(times))
    assert freqs[power.mean(-1).argmax()] == pytest.approx(125, abs=FS / 64)
    assert_allclose(times[:2], [32 / FS, 48 / FS])


def test_hilbert_envelope_and_instantaneous_frequency():
    modulation = 1 + 0.5 * np.sin(2 * np.pi * 2 * T)
    assert_allclose(filters.envelope(modulation * tone(100))[MID], modulation[MID], atol=0.01)
    freq = filters.instantaneous_frequency(tone(80), FS)
    assert freq.shape == T.shape
    assert_allclose(freq[MID], 80, atol=0.05)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: filters.lowpass(tone(5), FS, 500), "Nyquist"),
        (lambda: filters.highpass(tone(5), FS, 0), "Nyquist"),
        (lambda: filters.bandpass(tone(5), FS, 80, 40), "low < high"),
        (lambda: filters.bandpass(tone(5)[:20], FS, 10, 40), "too short"),
        (lambda: filters.notch(tone(5), FS, 600), "Nyquist"),
        (lambda: filters.spectrogram_frames(tone(5)[:30], FS, nperseg=64), "shorter than one"),
        (lambda: filters.spectrogram_frames(tone(5), FS, nperseg=64, hop=65), "hop"),
    ],
)
def test_impossible_settings_say_what_to_change(call, message):
    with pytest.raises(ValueError, match=message):
        call()
