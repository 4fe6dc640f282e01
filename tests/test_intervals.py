"""Interval-labelled long recordings: step labels, windows, chronological splits, seq2seq."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import edfio
import numpy as np
import pytest

import pipeline
from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.intervals import (
    Interval,
    is_interval_csv,
    read_intervals,
    step_labels,
    window_samples,
)
from pipeline.prepare.sample_data import make_activity_recordings
from pipeline.training.datamodule import SequenceDataModule

SIGNAL = {"fs": 20, "steps": [{"window_stats": {"nperseg": 4, "hop": 2, "stats": ["mean", "std"]}}]}


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_step_labels_follow_the_interval_times():
    times = np.arange(10) * 0.5  # 0, 0.5, ..., 4.5 s
    intervals = [Interval(0.5, 1.5, "b"), Interval(3.0, 9.0, "a")]
    labels = step_labels(times, intervals, {"a": 0, "b": 1})
    assert labels.tolist() == [-1, 1, 1, -1, -1, -1, 0, 0, 0, 0]


def _windows(times, labels, *, hop, per_step, fractions=(0, 0), path=Path("r"), source=Path("r")):
    """2-second windows of a recording with classes a and b."""
    return window_samples(path, source, times=times, labels=labels, class_names=["a", "b"],
                          length=2.0, hop=hop, fractions=fractions, per_step=per_step)  # fmt: skip


def test_windows_split_in_time_without_straddling_and_take_the_majority_label():
    times = np.arange(100) / 10  # 10 s at 10 steps/s
    labels = np.repeat([0, 1], 50)
    samples = _windows(
        times,
        labels,
        hop=1.0,
        fractions=(0.2, 0.2),
        per_step=False,
        path=Path("r.npz"),
        source=Path("r.csv"),
    )
    got = [(s.split, s.steps, s.label) for s in samples]
    assert got == [
        ("train", (0, 20), "a"), ("train", (10, 30), "a"), ("train", (20, 40), "a"),
        ("train", (30, 50), "a"), ("train", (40, 60), "a"),  # a tie goes to the first class
        ("val", (60, 80), "b"), ("test", (80, 100), "b"),
    ]  # fmt: skip
    assert samples[0].seconds == (0.0, 1.9) and samples[0].source == Path("r.csv")


def test_windows_without_a_majority_or_any_label_are_dropped():
    times = np.arange(40) / 10
    labels = np.array([-1] * 25 + [0] * 15)
    seq = _windows(times, labels, hop=2.0, per_step=False)
    step = _windows(times, labels, hop=2.0, per_step=True)
    assert [s.steps for s in seq] == [(20, 40)] and [s.steps for s in step] == [(20, 40)]
    labels[:20] = -1
    labels[19] = 0
    step = _windows(times, labels, hop=2.0, per_step=True)
    assert [s.steps for s in step] == [(0, 20), (20, 40)]


def test_interval_csv_checks(tmp_path: Path):
    (tmp_path / "r.csv").write_text("x\n1\n")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\nr.csv,a\n")
    assert not is_interval_csv(manifest)
    for body, message in [
        ("r.csv,1,x,a", "start and end must be numbers"),
        ("r.csv,2,1,a", "needs 0 <= start < end"),
        ("missing.csv,0,1,a", "missing.csv does not exist"),
        ("r.csv,0,,a", "line 2: no end; fill every cell"),
        ("r.csv,0,1", "line 2: no label"),
        ("r.csv,0,5,a\nr.csv,9,12,a\nr.csv,4,6,b", r"lines 2 and 4: intervals of r.csv overlap"),
        ("r.csv,0,5,a\nr.csv,0,5,a", "lines 2 and 3"),  # the same row twice
    ]:
        path = tmp_path / "labels.csv"
        path.write_text(f"file,start,end,label\n{body}\n")
        assert is_interval_csv(path)
        with pytest.raises(UserError, match=message):
            read_intervals(path)


@pytest.fixture(scope="module")
def activity(tmp_path_factory) -> Path:
    return make_activity_recordings(tmp_path_factory.mktemp("act") / "rec", 2, 60.0, fs=20)


def fit_args(labels: Path, runs: Path, *extra: str) -> list[str]:
    return [f"--data.root={labels}", f"--data.signal={json.dumps(SIGNAL)}",
            "--data.window_length=3", "--data.window_hop=1", "--data.val_fraction=0.2",
            "--data.test_fraction=0.2", f"--trainer.default_root_dir={runs}",
            "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false",
            "--model.hidden_size=8", *extra]  # fmt: skip


def test_windowed_sequence_to_label_from_the_cli(activity: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    main(["fit", *fit_args(activity, runs)])
    ckpt = runs / "checkpoints" / "last.ckpt"
    main(["test", *fit_args(activity, runs), f"--ckpt_path={ckpt}"])
    metrics = json.loads(next(runs.glob("version_*/metrics.json")).read_text())
    dm = SequenceDataModule(root=str(activity), signal=None)
    assert metrics["class_names"] == ["idle", "run", "walk"]
    main(["predict", *fit_args(activity, runs), f"--ckpt_path={ckpt}"])
    rows = read_rows(next(runs.glob("version_*/predictions.csv")))
    assert metrics["num_samples"] == len(rows) > 0
    assert {"start_s", "end_s"} <= set(rows[0]) and rows[0]["path"].endswith(".csv")
    assert all(float(r["end_s"]) - float(r["start_s"]) == pytest.approx(2.9) for r in rows)
    with pytest.raises(UserError, match="set data.signal"):
        dm.labelled_samples  # noqa: B018


def test_per_step_labels_every_step(activity: Path, tmp_path: Path, capsys, caplog):
    runs = tmp_path / "runs"
    main(["fit", *fit_args(activity, runs, "--data.per_step=true")])
    ckpt = runs / "checkpoints" / "last.ckpt"
    main(["test", *fit_args(activity, runs, "--data.per_step=true"), f"--ckpt_path={ckpt}"])
    assert "labelled time steps" in capsys.readouterr().out
    dm = SequenceDataModule(root=str(activity), signal=SIGNAL, window_length=3, window_hop=1,
                            val_fraction=0.2, test_fraction=0.2, per_step=True)  # fmt: skip
    dm.setup("test")
    expected = sum(int((dm.step_labels[s.path][slice(*s.steps)] >= 0).sum())
                   for s in dm.splits["test"])  # fmt: skip
    metrics = json.loads(next(runs.glob("version_*/metrics.json")).read_text())
    assert metrics["num_samples"] == expected > 0

    out = tmp_path / "steps.csv"
    main(["classify", str(activity.parent / "subject_1.csv"), "--checkpoint", str(ckpt),
          "--out", str(out)])  # fmt: skip
    rows = read_rows(out)
    times = [float(r["time_s"]) for r in rows]
    assert len(rows) == (60 * 20 - 4) // 2 + 1  # window_stats frames of the whole recording
    assert times[0] == pytest.approx(1.5 / 20) and np.all(np.diff(times) > 0)
    assert {r["predicted"] for r in rows} <= {"idle", "run", "walk"}
    (predicted,) = pipeline.classify([activity.parent / "subject_1.csv"], ckpt).predicted
    assert predicted == [r["predicted"] for r in rows]  # from Python: a class per step

    main(["test", *fit_args(activity, runs), f"--ckpt_path={ckpt}"])  # per_step from the fit's
    assert "as the checkpoint's fit did: per_step=True" in caplog.text
    last = max(runs.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    assert json.loads((last / "metrics.json").read_text())["num_samples"] == expected


def test_per_step_evaluation_windows_do_not_overlap():
    times = np.arange(100) / 10
    labels = np.zeros(100, dtype=np.int64)
    samples = _windows(times, labels, hop=0.5, fractions=(0.2, 0.2), per_step=True)
    by_split = {split: [s.steps for s in samples if s.split == split] for split in ("val", "test")}
    assert by_split == {"val": [(60, 80)], "test": [(80, 100)]}
    assert len([s for s in samples if s.split == "train"]) == 9  # training windows overlap


def test_sleep_stages_in_edf_annotations_label_an_edf_studys_epochs(tmp_path: Path):
    """docs/signals.md's recipe: a hypnogram's EDF+ annotations become the interval CSV of
    the recording beside it, whose 30 s epochs train on one EEG channel of two rates' file."""
    rng = np.random.default_rng(0)
    root, fs = tmp_path / "sleep", 20
    root.mkdir()
    for study in range(2):
        stages = ["W", "W", "N3", "N3", "N3", "W"] * 2
        t = np.arange(30 * fs) / fs
        eeg = np.concatenate([40 * np.sin(2 * np.pi * (8 if s == "W" else 2) * t)
                              for s in stages]) + rng.normal(0, 5, 30 * fs * len(stages))  # fmt: skip
        temperature = rng.normal(36.5, 0.1, 30 * len(stages))
        edfio.Edf([edfio.EdfSignal(eeg, fs, label="EEG Fpz-Cz"),
                   edfio.EdfSignal(temperature, 1, label="Temp")]).write(root / f"{study}-PSG.edf")  # fmt: skip
        scored = [
            edfio.EdfAnnotation(30.0 * i, 30.0, f"Sleep stage {s}") for i, s in enumerate(stages)
        ]
        edfio.Edf([edfio.EdfSignal(np.zeros(30 * len(stages)), 1, label="none")],
                  annotations=scored).write(root / f"{study}-Hypnogram.edf")  # fmt: skip
    with open(root / "intervals.csv", "w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["file", "start", "end", "label"])
        for psg in sorted(root.glob("*-PSG.edf")):
            hypnogram = psg.with_name(psg.name.replace("-PSG", "-Hypnogram"))
            for stage in edfio.read_edf(hypnogram).annotations:
                if stage.duration:
                    rows.writerow([psg.name, stage.onset, stage.onset + stage.duration, stage.text])
    runs = tmp_path / "runs"
    args = [f"--data.root={root / 'intervals.csv'}", "--data.window_length=30",
            "--data.signal.channels=[EEG Fpz-Cz]", f"--trainer.default_root_dir={runs}",
            "--trainer.max_epochs=10", "--trainer.enable_progress_bar=false",
            "--model.hidden_size=8"]  # fmt: skip
    main(["fit", *args])
    main(["test", *args, f"--ckpt_path={runs / 'checkpoints' / 'last.ckpt'}"])
    metrics = json.loads(next(runs.glob("version_*/metrics.json")).read_text())
    assert metrics["class_names"] == ["Sleep stage N3", "Sleep stage W"]
    assert metrics["num_samples"] >= 2 and metrics["accuracy"] == 1.0
