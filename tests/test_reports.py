"""Reports after `test` and `seqclass report`: figures, report.md, consistent numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from pipeline.cli import main
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
