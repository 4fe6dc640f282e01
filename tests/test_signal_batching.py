"""The chain over many recordings: batched decomposition, worker processes, failures, resuming."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from feature_extractors.signal import SignalPreprocessing
from feature_extractors.signal import preprocessing as chain_module
from pipeline.cli import main
from pipeline.prepare import signals as signal_cache
from pipeline.prepare.sample_data import make_machine_dataset

STEPS = [
    {"detrend": {}},
    {"highpass": {"cutoff": 5}},
    {"vmd": {"num_modes": 2, "alpha": 2000, "max_iterations": 60}},
    {"window_stats": {"nperseg": 25, "hop": 25, "stats": ["rms", "kurtosis"]}},
]
needs_fork = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="the test patches the chain in this process; only forked workers see the patch",
)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """12 two-axis recordings of 0.4 s: one length, so they can be decomposed together."""
    return make_machine_dataset(tmp_path / "machines", 3, fs=1000, seconds=(0.4, 0.4))


def features(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): np.load(p)["features"] for p in sorted(out.rglob("*.npz"))}


def test_batches_and_workers_cache_what_one_at_a_time_does(recordings, tmp_path, monkeypatch):
    batch_sizes = []
    vmd = chain_module._OPEN_OPTIONS["vmd"]

    @functools.wraps(vmd)  # the chain reads vmd's options from its signature
    def counted(x, **options):
        batch_sizes.append(len(x))
        return vmd(x, **options)

    monkeypatch.setitem(chain_module._OPEN_OPTIONS, "vmd", counted)
    chain = SignalPreprocessing(fs=1000.0, steps=STEPS, workers=0)
    with monkeypatch.context() as one_at_a_time:
        one_at_a_time.setattr(signal_cache, "BATCH_VALUES", 1)
        alone = signal_cache.preprocess_recordings(recordings, tmp_path / "alone", chain)
    assert batch_sizes == [1] * 12 and len(alone.written) == 12
    batch_sizes.clear()
    pooled = SignalPreprocessing(fs=1000.0, steps=STEPS, workers=2)
    together = signal_cache.preprocess_recordings(recordings, tmp_path / "together", pooled)
    assert batch_sizes == [12] and len(together.written) == 12
    a, b = features(tmp_path / "alone"), features(tmp_path / "together")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # bitwise


@needs_fork
def test_a_worker_that_dies_names_its_recording_and_the_rest_go_on(
    recordings, tmp_path, monkeypatch
):
    head = SignalPreprocessing.head

    def crash_on_one(self, path):
        if Path(path).name == "healthy_001.wav":
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        return head(self, path)

    monkeypatch.setattr(SignalPreprocessing, "head", crash_on_one)
    (recordings / "healthy" / "broken.wav").write_bytes(b"RIFF, then nothing")
    chain = SignalPreprocessing(fs=1000.0, steps=STEPS[:2], workers=2)
    report = signal_cache.preprocess_recordings(recordings, tmp_path / "cache", chain)
    assert len(report.written) == 11
    (broken, why), (died, reason) = report.failed
    assert broken.name == "broken.wav" and "cannot read it as WAV" in why
    assert died.name == "healthy_001.wav" and "the process preprocessing it died" in reason
    failures = (tmp_path / "cache" / "failures.csv").read_text()
    assert "healthy_001.wav" in failures and "broken.wav" in failures


def test_a_killed_run_resumes_from_the_recordings_it_wrote(recordings, tmp_path):
    """kill -9 after three recordings were written: the rerun keeps them and does the rest."""
    script = f"""
import os, signal
from feature_extractors.signal import SignalPreprocessing
from pipeline.prepare import signals
save, saved = signals.save_sequence, []
def save_then_die(*args, **kwargs):
    if len(saved) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    save(*args, **kwargs)
    saved.append(1)
signals.save_sequence = save_then_die
chain = SignalPreprocessing(fs=1000.0, steps={STEPS!r}, workers=0)
signals.preprocess_recordings({str(recordings)!r}, {str(tmp_path / "cache")!r}, chain)
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3
    chain = SignalPreprocessing(fs=1000.0, steps=STEPS, workers=0)
    rerun = signal_cache.preprocess_recordings(recordings, tmp_path / "cache", chain)
    assert len(rerun.skipped) == 3 and len(rerun.written) == 9
    clean = signal_cache.preprocess_recordings(recordings, tmp_path / "clean", chain)
    assert len(clean.written) == 12
    a, b = features(tmp_path / "cache"), features(tmp_path / "clean")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_settings_of_earlier_versions_keep_the_vmd_defaults_they_were_made_with():
    earlier = {"kind": "signal", "fs": 1000.0, "steps": [{"vmd": {"num_modes": 3, "tau": 0.1}}],
               "variable": None, "nan_policy": "raise"}  # fmt: skip
    chain = SignalPreprocessing.from_settings(earlier)
    assert chain.steps == [
        {"vmd": {"tau": 0.1, "init": "peaks", "dtype": "float64", "num_modes": 3}}
    ]
    today = SignalPreprocessing.from_settings({**earlier, "version": 2})
    assert today.steps == earlier["steps"] and today.settings()["version"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_chain_without_a_gpu_stops_at_start_in_one_line(signal_root, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", f"--data.root={signal_root}", "--data.signal.fs=100",
              "--data.signal.device=cuda", "--trainer.max_epochs=1"])  # fmt: skip
    assert stop.value.code == 2
    assert (
        "signal.device 'cuda': torch finds no CUDA GPU here; drop the option"
        in capsys.readouterr().err
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_chain_on_a_gpu_caches_what_the_cpu_does(recordings, tmp_path):
    steps = [{**step, "vmd": {**step["vmd"], "dtype": "float64"}} if "vmd" in step else step
             for step in STEPS]  # fmt: skip
    for device in ("cpu", "cuda"):
        chain = SignalPreprocessing(fs=1000.0, steps=steps, workers=0, device=device)
        signal_cache.preprocess_recordings(recordings, tmp_path / device, chain)
    a, b = features(tmp_path / "cpu"), features(tmp_path / "cuda")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-6 * np.abs(a[key]).max())
