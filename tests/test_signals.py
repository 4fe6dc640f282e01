"""Raw recordings through the cached preprocessing chain: fit, test, predict and classify."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import edfio
import matplotlib.image
import numpy as np
import pytest
import torch
import yaml

from feature_extractors.signal import SignalPreprocessing
from pipeline.cli import main
from pipeline.data.sequence_files import load_sequence
from pipeline.prepare.sample_data import make_activity_recordings, make_machine_dataset
from pipeline.prepare.signals import preprocess_recordings, signal_cache_dir

STEPS = [
    {"detrend": {}},
    {"notch": {"freq": 50}},
    {"vmd": {"num_modes": 2, "alpha": 2000, "max_iterations": 100}},
    {"window_stats": {"nperseg": 25, "hop": 25, "stats": ["rms", "kurtosis"]}},
]


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def write_config(path: Path, root: Path, runs: Path, steps: list[dict]) -> Path:
    config = {
        "trainer": {"default_root_dir": str(runs), "max_epochs": 3, "enable_progress_bar": False},
        "model": {"hidden_size": 8, "bidirectional": True, "pooling": "mean"},
        "data": {"root": str(root), "val_fraction": 0.25, "test_fraction": 0.25,
                 "signal": {"steps": steps}},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def machine_run(tmp_path_factory) -> dict:
    """Small vibration WAV dataset and a model fitted on its VMD window statistics."""
    tmp = tmp_path_factory.mktemp("machines")
    root = make_machine_dataset(tmp / "machines", 4, fs=1000, seconds=(0.4, 0.5))
    config = write_config(tmp / "config.yaml", root, tmp / "runs", STEPS)
    main(["fit", f"--config={config}"])
    return {"root": root, "config": config, "ckpt": tmp / "runs" / "checkpoints" / "last.ckpt"}


def test_cache_is_keyed_on_settings_and_resumes(tmp_path: Path):
    root = make_machine_dataset(tmp_path / "m", 2, fs=1000, seconds=(0.3, 0.3))
    chain = SignalPreprocessing(steps=STEPS[:2]).for_files(sorted(root.rglob("*.wav")))
    out = signal_cache_dir(root, chain.settings())
    assert out.parent == tmp_path / "m-cache"
    other = SignalPreprocessing(fs=1000.0, steps=STEPS[:1]).settings()
    assert signal_cache_dir(root, other) != out

    first = preprocess_recordings(root, out, chain)
    assert len(first.written) == 8 and not first.skipped
    sample = out / "healthy" / "healthy_000.npz"
    with np.load(sample) as npz:
        assert npz["features"].shape == (300, 2)
        np.testing.assert_allclose(npz["times"], np.arange(300) / 1000)
        assert list(npz["channels"]) == ["ch0", "ch1"]
    expected = chain.process(root / "healthy" / "healthy_000.wav").data.T
    np.testing.assert_allclose(load_sequence(sample), expected.astype(np.float32))

    wav = root / "imbalance" / "imbalance_001.wav"
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    (out / "healthy" / ".healthy_001.npz.x.tmp").write_bytes(b"left by a killed run")
    second = preprocess_recordings(root, out, chain)
    assert second.written == [out / "imbalance" / "imbalance_001.npz"]
    assert len(second.skipped) == 7


def test_checkpoint_holds_the_chain_with_the_datas_rate(machine_run: dict):
    ckpt = torch.load(machine_run["ckpt"], weights_only=True)
    settings = ckpt["hyper_parameters"]["feature_settings"]
    assert settings == {"kind": "signal", "version": 2, "fs": 1000.0, "steps": STEPS,
                        "variable": None, "nan_policy": "raise"}  # fmt: skip
    assert ckpt["hyper_parameters"]["input_size"] == 2 * 2 * 2  # axes x modes x statistics


def test_classify_raw_recordings_matches_predict(machine_run: dict, tmp_path: Path, capsys):
    out = tmp_path / "classify.csv"
    (tmp_path / "broken.wav").write_bytes(b"RIFF garbage")
    main(["classify", str(machine_run["root"]), str(tmp_path / "broken.wav"),
          "--checkpoint", str(machine_run["ckpt"]), "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert "16 classified, 1 skipped" in captured.out and "broken.wav" in captured.err
    rows = read_rows(out)
    main(["predict", f"--config={machine_run['config']}", f"--ckpt_path={machine_run['ckpt']}",
          f"--data.predict_root={machine_run['root']}", "--trainer.logger=false",
          f"--trainer.default_root_dir={tmp_path}", "--trainer.callbacks+=PredictionWriter",
          f"--trainer.callbacks.filename={tmp_path / 'predict.csv'}"])  # fmt: skip
    predicted = read_rows(tmp_path / "predict.csv")
    assert [r["path"] for r in predicted] == [r["path"] for r in rows]
    assert rows[0]["path"].endswith(".wav")  # the raw recording, not its cache file
    for a, b in zip(rows, predicted, strict=True):
        probs = [[float(r[k]) for k in r if k.startswith("prob_")] for r in (a, b)]
        np.testing.assert_allclose(*probs, atol=1e-5)


def test_test_needs_only_the_recordings_and_the_checkpoint(
    machine_run: dict, tmp_path: Path, caplog, recwarn
):
    """The fit's chain and split come from the checkpoint: the same scores as with its config."""
    common = [f"--ckpt_path={machine_run['ckpt']}", "--trainer.enable_progress_bar=false"]
    main(["test", f"--config={machine_run['config']}", *common,
          f"--trainer.default_root_dir={tmp_path / 'with-config'}"])  # fmt: skip
    main(["test", f"--data.root={machine_run['root']}", *common,
          f"--trainer.default_root_dir={tmp_path / 'without'}"])  # fmt: skip
    assert (
        "val_fraction=0.25, test_fraction=0.25, the signal chain (detrend -> notch -> vmd -> "
        "window_stats)" in caplog.text
    )
    with_config, without = (
        read_rows(tmp_path / name / "version_0" / "test_predictions.csv")
        for name in ("with-config", "without")
    )
    assert len(with_config) == 4 and without == with_config
    # the fit's checkpoint folder is not this one's, which only a resumed fit would care about
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]


def test_other_preprocessing_is_refused_at_test(machine_run: dict, tmp_path: Path, capsys):
    steps = [*STEPS[:3], {"window_stats": {"nperseg": 25, "hop": 25, "stats": ["rms", "peak"]}}]
    config = write_config(tmp_path / "c.yaml", machine_run["root"], tmp_path / "runs", steps)
    with pytest.raises(SystemExit):
        main(["test", f"--config={config}", f"--ckpt_path={machine_run['ckpt']}"])
    assert "features were made with" in capsys.readouterr().err


def test_bad_recordings_stop_fit_with_every_file_named(tmp_path: Path, capsys):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        for i in range(4):
            (root / label).mkdir(parents=True, exist_ok=True)
            np.save(root / label / f"{i}.npy", rng.normal(size=(200, 2)))
    bad = rng.normal(size=(200, 2))
    bad[5, 0] = np.nan
    np.save(root / "a" / "1.npy", bad)
    np.save(root / "b" / "2.npy", rng.normal(size=(10, 2)))
    config = write_config(
        tmp_path / "c.yaml", root, tmp_path / "runs", [{"lowpass": {"cutoff": 10}}]
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={config}", "--data.signal.fs=100"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "2 recording(s) could not be preprocessed" in err
    assert "a/1.npy: 1 NaN/Inf values" in err and "nan_policy: interpolate" in err
    assert "b/2.npy: step lowpass: a signal of 10 samples is too short" in err


@pytest.mark.parametrize("config", sorted(Path("configs").glob("signal_*.yaml")), ids=str)
def test_signal_configs_train(config: Path, tmp_path: Path):
    """Every shipped signal config fits on a tiny version of the data it is written for."""
    settings = yaml.safe_load(config.read_text())
    if "activity" in config.name:
        root = make_activity_recordings(tmp_path / "activity", 2, 40.0)
    else:
        root = make_machine_dataset(tmp_path / "machines", 4, fs=2000, seconds=(0.4, 0.5))
    runs = tmp_path / "runs"
    main(["fit", f"--config={config}", f"--data.root={root}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
          "--data.val_fraction=0.25", "--data.test_fraction=0.25"])  # fmt: skip
    ckpt = torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)
    assert (
        ckpt["hyper_parameters"]["feature_settings"]["steps"] == settings["data"]["signal"]["steps"]
    )


def test_explain_shades_the_raw_recording(machine_run: dict, tmp_path: Path) -> None:
    wav = sorted(machine_run["root"].rglob("*.wav"))[0]
    main(["explain", str(wav), "--checkpoint", str(machine_run["ckpt"]), "--out", str(tmp_path)])
    with np.load(tmp_path / f"{wav.stem}.npz") as npz:
        times = npz["times"]
        assert npz["importance"].shape == times.shape and times[-1] < 0.5  # seconds
    image = matplotlib.image.imread(tmp_path / f"{wav.stem}.png")
    assert image.shape[1] > 300 and image[..., :3].std() > 0.05


def write_sleep_study(path: Path, rhythm_hz: float, order: tuple[str, ...], seed: int) -> Path:
    """A 4 s EDF recording as sleep studies hold them: EEG with a rhythm of `rhythm_hz` and EOG
    at 100 Hz, temperature at 1 Hz, the channels in `order`."""
    rng = np.random.default_rng(seed)
    t = np.arange(400) / 100
    channels = {
        "EEG": (40 * np.sin(2 * np.pi * rhythm_hz * t + rng.uniform(0, 6)) + rng.normal(0, 5, 400), 100),
        "EOG": (rng.normal(0, 20, 400), 100),
        "Temp": (rng.normal(36.5, 0.1, 4), 1),
    }  # fmt: skip
    signals = [edfio.EdfSignal(channels[n][0], channels[n][1], label=n) for n in order]
    edfio.Edf(signals).write(path)
    return path


def test_edf_sleep_studies_train_and_classify_by_channel_name(tmp_path: Path, capsys):
    """EDF files whose channels come in different orders and rates: `fit` names the rates and
    the option to pick channels, then trains on those picked, read by name, and `classify`
    gives a file the same probabilities whatever order it holds them in."""
    root = tmp_path / "psg"
    for label, hz in (("wake", 10.0), ("deep", 2.0)):
        (root / label).mkdir(parents=True)
        for i in range(8):
            order = ("EEG", "Temp", "EOG") if i % 2 else ("Temp", "EOG", "EEG")
            write_sleep_study(root / label / f"{i}.edf", hz, order, seed=i + 10 * (hz > 5))
    runs = tmp_path / "runs"
    args = ["fit", f"--data.root={root}", f"--trainer.default_root_dir={runs}",
            "--trainer.max_epochs=8", "--trainer.enable_progress_bar=false",
            "--model.hidden_size=8", "--data.val_fraction=0", "--data.test_fraction=0"]  # fmt: skip
    with pytest.raises(SystemExit):
        main([*args, "--data.signal={}"])
    assert "its channels are sampled at different rates (1 Hz: Temp; 100 Hz: EOG, EEG)" in (
        capsys.readouterr().err
    )
    main([*args, "--data.signal.channels=[EEG, EOG]"])
    ckpt = torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert ckpt["columns"] == ["EEG", "EOG"] and ckpt["feature_settings"]["channels"] == [
        "EEG",
        "EOG",
    ]
    new = tmp_path / "new"
    new.mkdir()
    for name, order in (("a", ("EEG", "EOG", "Temp")), ("b", ("Temp", "EOG", "EEG"))):
        write_sleep_study(new / f"{name}.edf", 10.0, order, seed=99)  # one recording, two orders
    write_sleep_study(new / "slow.edf", 2.0, ("EOG", "EEG", "Temp"), seed=98)
    out = tmp_path / "classify.csv"
    main(["classify", str(new), "--checkpoint", str(runs / "checkpoints" / "last.ckpt"),
          "--out", str(out)])  # fmt: skip
    rows = {Path(r["path"]).stem: r for r in read_rows(out)}
    assert [rows[n]["predicted"] for n in ("a", "b", "slow")] == ["wake", "wake", "deep"]
    assert rows["a"]["prob_wake"] == rows["b"]["prob_wake"]
