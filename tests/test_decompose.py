"""`seqclass decompose`: modes, pictures and stationarity lines for recordings."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

from pipeline.cli import main

FS = 1000.0
T = np.arange(1000) / FS
PAPER = (
    np.cos(2 * np.pi * 2 * T) + np.cos(2 * np.pi * 24 * T) / 4 + np.cos(2 * np.pi * 288 * T) / 16
)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """One 2-channel recording: the VMD paper's tones (stationary) and a random walk (not)."""
    walk = np.cumsum(np.random.default_rng(0).normal(size=1000))
    root = tmp_path / "rec"
    root.mkdir()
    np.save(root / "paper.npy", np.stack([PAPER, walk], axis=1))
    return root


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_vmd_modes_png_and_stationarity(recordings: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    main(["decompose", str(recordings), "--out", str(out), "--fs", "1000", "--num-modes", "3",
          "--alpha", "2000"])  # fmt: skip
    with np.load(out / "paper.npz") as npz:
        assert npz["modes"].shape == (2, 3, 1000) and float(npz["fs"]) == FS
        np.testing.assert_allclose(npz["center_frequencies"][0], [2, 24, 288], rtol=0.01)
    image = matplotlib.image.imread(out / "paper.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 0.05
    rows = read_rows(out / "decompose.csv")
    assert [(r["channel"], r["stationary"]) for r in rows] == [("ch0", "True"), ("ch1", "False")]
    assert float(rows[1]["adf_p_value"]) > 0.05
    printed = capsys.readouterr().out
    assert "paper.npy ch1: ADF" in printed and "non-stationary" in printed


def test_config_steps_and_options_are_applied_before_decomposing(recordings: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    steps = [{"lowpass": {"cutoff": 100}}, {"emd": {"num_modes": 2, "method": "emd"}}]
    config.write_text(yaml.safe_dump({"data": {"signal": {"fs": FS, "steps": steps}}}))
    out = tmp_path / "out"
    main(["decompose", str(recordings / "paper.npy"), "--out", str(out), "--config", str(config),
          "--no-plot"])  # fmt: skip
    assert not (out / "paper.png").exists()
    with np.load(out / "paper.npz") as npz:
        assert npz["modes"].shape == (2, 2, 1000)  # num_modes from the config
    row = read_rows(out / "decompose.csv")[0]
    freqs = [float(f) for f in row["center_frequencies_hz"].split()]
    np.testing.assert_allclose(freqs, [2, 24], rtol=0.05)  # 288 Hz went with the lowpass


def test_bad_requests_name_the_fix(recordings: Path, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["decompose", str(recordings), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "paper.npy: .npy files do not store a sample rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["decompose", str(recordings), "--out", str(tmp_path / "o"), "--fs", "1000",
              "--num-modes", "600"])  # fmt: skip
    assert "cannot hold 600 modes" in capsys.readouterr().err


def test_two_processes_decompose_each_recording_once_and_a_rerun_resumes(
    recordings: Path, tmp_path: Path, capfd
):
    for i in range(3):  # four recordings in all, and one that cannot be read
        np.save(recordings / f"tone{i}.npy", np.sin(2 * np.pi * (5 + i) * T)[:, None])
    (recordings / "broken.npy").write_bytes(b"not an array")
    args = ["--fs", "1000", "--num-modes", "2", "--no-plot"]
    main(["decompose", str(recordings), "--out", str(tmp_path / "one"), *args])
    main(["decompose", str(recordings), "--out", str(tmp_path / "two"), *args, "--devices", "2"])
    printed = capfd.readouterr()
    assert printed.out.count("4 written, 0 up to date, 1 skipped") == 2
    assert printed.err.count("broken.npy") == 2  # named by each run, once
    assert read_rows(tmp_path / "two" / "decompose.csv") == read_rows(
        tmp_path / "one" / "decompose.csv"
    )
    assert [r["path"] for r in read_rows(tmp_path / "two" / "failures.csv")] == [
        str(recordings / "broken.npy")
    ]
    (tmp_path / "two" / "tone1.npz").unlink()  # as if killed before this one was written
    main(["decompose", str(recordings), "--out", str(tmp_path / "two"), *args, "--devices", "2"])
    assert "1 written, 3 up to date, 1 skipped" in capfd.readouterr().out
    assert read_rows(tmp_path / "two" / "decompose.csv") == read_rows(
        tmp_path / "one" / "decompose.csv"
    )


def test_a_constant_channel_gets_no_stationarity_line_and_the_run_goes_on(tmp_path: Path):
    pytest.importorskip("statsmodels")
    root = tmp_path / "rec"
    root.mkdir()
    np.save(root / "flat.npy", np.stack([PAPER, np.full(1000, 3.0)], axis=1))
    main(["decompose", str(root), "--out", str(tmp_path / "out"), "--fs", "1000",
          "--num-modes", "2", "--no-plot"])  # fmt: skip
    rows = read_rows(tmp_path / "out" / "decompose.csv")
    assert [(r["channel"], r["adf_p_value"]) for r in rows][1] == ("ch1", "")
    assert rows[0]["adf_p_value"] != ""


def test_channels_named_on_the_command_line_are_the_ones_decomposed(
    recordings: Path, tmp_path: Path
):
    out = tmp_path / "out"
    main(["decompose", str(recordings), "--out", str(out), "--fs", "1000", "--num-modes", "3",
          "--alpha", "2000", "--channels", "ch1", "ch0", "--no-plot"])  # fmt: skip
    with np.load(out / "paper.npz") as npz:
        assert npz["modes"].shape == (2, 3, 1000)
        np.testing.assert_allclose(npz["center_frequencies"][1], [2, 24, 288], rtol=0.01)
    assert [r["channel"] for r in read_rows(out / "decompose.csv")] == ["ch1", "ch0"]
