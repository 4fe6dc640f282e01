"""The configurable chain: step checking, channel and time bookkeeping, rates, file errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal
from numpy.testing import assert_allclose

from feature_extractors.signal import Signal, SignalError, SignalPreprocessing, filters, vmd

FS = 200.0
T = np.arange(400) / FS
X = np.stack([np.sin(2 * np.pi * 5 * T), np.cos(2 * np.pi * 40 * T)])  # [C=2, T]


def run(steps: list[dict]) -> Signal:
    return SignalPreprocessing(fs=FS, steps=steps).apply(Signal(X, FS, 0.0, ["a", "b"]))


def test_filters_compose_like_the_plain_functions():
    out = run([{"detrend": {}}, {"bandpass": {"low": 2, "high": 20}}, {"zscore": None}])
    expected = filters.zscore(filters.bandpass(scipy.signal.detrend(X, axis=-1), FS, 2, 20))
    assert_allclose(out.data, expected)
    assert out.names == ["a", "b"] and out.fs == FS


def test_decomposition_modes_become_channels():
    out = run([{"vmd": {"num_modes": 2, "alpha": 2000, "residual": True}}])
    expected = vmd(X, num_modes=2, alpha=2000, fs=FS)
    assert out.data.shape == (6, 400)
    assert_allclose(out.data[:2], expected.modes[0].numpy())
    assert_allclose(out.data[2], expected.residual[0].numpy())
    assert out.names[:3] == ["a.mode0", "a.mode1", "a.residual"]


def test_time_changing_steps_track_rate_and_step_times():
    spec = run([{"spectrogram": {"nperseg": 40, "hop": 10}}])
    _, freqs, times = filters.spectrogram_frames(X, FS, 40, hop=10)
    assert spec.data.shape == (2 * len(freqs), len(times))
    assert_allclose(spec.times, times)
    stats = run(
        [
            {"resample": {"fs": 100}},
            {"window_stats": {"nperseg": 20, "hop": 10, "stats": ["rms", "peak"]}},
        ]
    )
    resampled = filters.resample(X, FS, 100)
    assert stats.fs == 10 and stats.data.shape == (4, 19)
    assert_allclose(stats.data[0, 3], np.sqrt(np.mean(resampled[0, 30:50] ** 2)))
    assert_allclose(stats.data[1, 3], np.abs(resampled[0, 30:50]).max())
    assert_allclose(stats.times[3], (30 + 9.5) / 100)  # window centre
    assert stats.names[:2] == ["a.rms", "a.peak"]


def test_hilbert_step_outputs():
    out = run([{"hilbert": {"outputs": ["frequency"]}}])
    assert out.data.shape == (2, 400)
    assert_allclose(np.median(out.data, axis=1), [5, 40], atol=0.1)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"bandpas": {}}], "unknown step 'bandpas'"),
        ([{"bandpass": {"lo": 1}}], r"unknown option\(s\) \['lo'\]; it takes \['low', 'high', 'order'\]"),
        ([{"vmd": {"num_mode": 3}}], "unknown option"),
        (["zscore"], "one-key mapping"),
        ([{"zscore": {}, "detrend": {}}], "one-key mapping"),
    ],
)  # fmt: skip
def test_bad_steps_are_refused_when_the_config_is_read(steps, message):
    with pytest.raises(ValueError, match=message):
        SignalPreprocessing(fs=FS, steps=steps)


def test_vmd_step_passes_its_options_on():
    SignalPreprocessing(steps=[{"vmd": {"tau": 0.0, "init": "grid", "max_iterations": 10}}])
    with pytest.raises(ValueError, match="nan_policy"):
        SignalPreprocessing(nan_policy="ignore")


def test_errors_name_the_file_and_the_step(tmp_path: Path):
    np.save(tmp_path / "short.npy", X[:, :10].T)
    chain = SignalPreprocessing(fs=FS, steps=[{"bandpass": {"low": 2, "high": 20}}])
    with pytest.raises(SignalError, match=r"short\.npy: step bandpass: .*too short"):
        chain.process(tmp_path / "short.npy")
    chain = SignalPreprocessing(fs=FS, steps=[{"lowpass": {"cutoff": 150}}])
    np.save(tmp_path / "ok.npy", X.T)
    with pytest.raises(SignalError, match=r"ok\.npy: step lowpass: .*Nyquist frequency 100 Hz"):
        chain.process(tmp_path / "ok.npy")
    chain = SignalPreprocessing(fs=FS, steps=[{"vmd": {"num_modes": 300}}])
    with pytest.raises(SignalError, match=r"ok\.npy: step vmd: .*cannot hold 300 modes"):
        chain.process(tmp_path / "ok.npy")


def test_rates_across_wav_files(tmp_path: Path):
    for name, rate in (("a.wav", 200), ("b.wav", 400)):
        samples = np.sin(2 * np.pi * 5 * np.arange(rate * 2) / rate).astype(np.float32)
        scipy.io.wavfile.write(tmp_path / name, rate, samples)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    fixed = SignalPreprocessing(steps=[{"detrend": {}}]).for_files(paths)
    assert fixed.fs == 200  # the first file's rate, checked against every other
    assert fixed.process(paths[0]).data.shape == (1, 400)
    with pytest.raises(SignalError, match=r"b\.wav: recorded at 400 Hz .* 200 Hz"):
        fixed.process(paths[1])
    resampling = SignalPreprocessing(steps=[{"resample": {"fs": 100}}]).for_files(paths)
    assert resampling.fs is None
    assert [resampling.process(p).data.shape for p in paths] == [(1, 200), (1, 200)]


def test_rates_across_csv_files_with_a_timed_column(tmp_path: Path):
    """A CSV whose time column names its unit stores its rate as a WAV does: the first such
    file fixes fs, a file without a rate is read at it, and a file at another rate is refused
    unless the chain resamples first."""
    for name, rate in (("a.csv", 200), ("b.csv", 400)):
        time_ms = np.arange(rate * 2) * 1000 / rate
        x = np.sin(2 * np.pi * 5 * time_ms / 1000)
        np.savetxt(tmp_path / name, np.column_stack([time_ms, x]), delimiter=",",
                   header="time_ms,x", comments="")  # fmt: skip
    np.save(tmp_path / "c.npy", np.zeros(400))
    paths = [tmp_path / "c.npy", tmp_path / "a.csv", tmp_path / "b.csv"]
    fixed = SignalPreprocessing(steps=[{"detrend": {}}]).for_files(paths)
    assert fixed.fs == 200
    assert fixed.process(paths[0]).fs == fixed.process(paths[1]).fs == 200
    assert fixed.process(paths[1]).names == ["x"]  # the header's name (decompose's plots show it)
    assert fixed.process(paths[0]).names == ["ch0"]
    with pytest.raises(SignalError, match=r"b\.csv: its time column steps at 400 Hz .* 200 Hz"):
        fixed.process(paths[2])
    resampling = SignalPreprocessing(steps=[{"resample": {"fs": 100}}]).for_files(paths[1:])
    assert [resampling.process(p).data.shape for p in paths[1:]] == [(1, 200), (1, 200)]
