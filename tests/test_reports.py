"""Reports after `test` and `seqclass report`: figures, report.md, consistent numbers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.training import metrics as scores
from pipeline.training.reports import _misclassified

FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--model.hidden_size=16", "--data.batch_size=8"]  # fmt: skip


def assert_picture(path: Path) -> None:
    """A real figure: large enough, and not one flat colour."""
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05


def test_test_writes_figures_and_a_report_that_agree_with_the_metrics(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    runs = tmp_path / "runs"
    common = [*FAST, f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}"]
    main(["fit", *common, "--trainer.max_epochs=3"])
    assert_picture(runs / "version_0" / "training_curves.png")
    main(["test", *common, f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"])
    run = runs / "version_1"
    metrics = json.loads((run / "metrics.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == metrics["num_samples"] == 8
    assert metrics["data"]["test"] == metrics["support"] == {c: 2 for c in metrics["class_names"]}
    assert metrics["fit_log_dir"] == str((runs / "version_0").resolve())
    for name in ("confusion_matrix.png", "per_class.png", "training_curves.png"):
        assert_picture(run / name)
    with (run / "test_predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    hits = sum(r["label"] == r["predicted"] for r in rows)
    assert hits == np.trace(confusion) == round(metrics["accuracy"] * 8)
    report = (run / "report.md").read_text()
    assert f"{8 - hits} of 8 rows of `test_predictions.csv`." in report  # all shown
    assert "![Confusion matrix](confusion_matrix.png)" in report and "max_epochs" in report
    assert "report with figures" in capsys.readouterr().out

    for name in ("confusion_matrix.png", "report.md"):
        (run / name).unlink()
    main(["report", str(run)])
    assert (run / "report.md").read_text() == report
    assert_picture(run / "confusion_matrix.png")


def test_report_on_a_folder_without_a_test_run_says_what_to_give(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no metrics.json here" in capsys.readouterr().err


def test_a_long_list_of_misclassified_samples_says_how_many_it_shows(tmp_path: Path) -> None:
    path = tmp_path / "test_predictions.csv"
    rows = "".join(f"{i}.npy,a,b,0.2,0.8\n" for i in range(3)) + "3.npy,a,a,0.9,0.1\n"
    path.write_text("path,label,predicted,prob_a,prob_b\n" + rows)
    lines = _misclassified(path, limit=2)
    assert "3 of 4 rows of `test_predictions.csv` (first 2 shown)." in lines
    assert [line for line in lines if line.startswith("| ") and ".npy" in line] == [
        "| 0.npy | a | b | 0.800 |", "| 1.npy | a | b | 0.800 |"
    ]  # fmt: skip


def test_a_folder_with_some_of_the_models_classes_is_scored_on_those(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    runs = tmp_path / "runs"
    main(["fit", *FAST, f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=1"])  # fmt: skip
    best = f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"
    classes = sorted(p.name for p in signal_root.iterdir())
    new = tmp_path / "new"
    for name in classes[:2]:  # a test folder without the other classes
        shutil.copytree(signal_root / name, new / "test" / name)
    main(["test", *FAST, best, f"--data.root={new}"])
    metrics = json.loads((only_run(runs, -1) / "metrics.json").read_text())
    assert metrics["class_names"] == classes and metrics["num_samples"] == 24
    assert metrics["support"] == {c: 12 * (c in classes[:2]) for c in classes}
    confusion = np.array(metrics["confusion_matrix"])
    for k, name in enumerate(classes[2:], start=2):  # never tested; undefined unless predicted
        assert metrics["recall"][name] is None
        assert (metrics["precision"][name] is None) == (confusion[:, k].sum() == 0)
    assert "– |" in (only_run(runs, -1) / "report.md").read_text()
    assert "note:" not in capsys.readouterr().out  # the folder's own test split: all of it

    shutil.copytree(signal_root, tmp_path / "copy")  # no test folder: a split is drawn
    main(["test", *FAST, best, f"--data.root={tmp_path / 'copy'}"])
    out = capsys.readouterr().out
    assert "is not the data the model was fitted on" in out and "8 of its 48 samples" in out
    shutil.copytree(signal_root / classes[0], new / "test" / "unknown")
    with pytest.raises(SystemExit):
        main(["test", *FAST, best, f"--data.root={new}"])
    assert "(['unknown'] unknown to it)" in capsys.readouterr().err


def only_run(runs: Path, index: int) -> Path:
    return sorted(runs.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[index]


def test_per_class_scores_are_sklearns_and_undefined_ones_are_none() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    target = rng.choice([0, 1, 3], size=60)  # class 2 never occurs
    predicted = np.where(rng.random(60) < 0.7, target, rng.choice([0, 1, 2], size=60))
    predicted[predicted == 3] = 1  # nothing is predicted as class 3
    metrics = scores.test_metrics(4)
    metrics.update(torch.from_numpy(predicted), torch.from_numpy(target))
    results = scores.test_results(metrics.compute(), ["a", "b", "c", "d"])
    expected = precision_recall_fscore_support(
        target, predicted, labels=range(4), zero_division=np.nan
    )
    for key, values in zip(("precision", "recall", "f1"), expected, strict=False):
        got = [np.nan if v is None else v for v in results[key].values()]
        np.testing.assert_allclose(got, values, rtol=1e-6)
    assert results["macro_f1"] == pytest.approx(f1_score(target, predicted, average="macro"))
    assert results["accuracy"] == pytest.approx(accuracy_score(target, predicted))
    assert results["recall"]["c"] is None and results["precision"]["d"] is None
    assert results["precision"]["c"] == 0.0 and results["f1"]["d"] == 0.0  # defined: zero
