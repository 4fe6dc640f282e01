"""Progress in a log file (stdout or stderr not a terminal): a few lines, not every redraw."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import main
from pipeline.core.progress import progress_bar


def test_a_bar_in_a_log_is_drawn_about_twenty_times(capsys) -> None:
    for _ in progress_bar(list(range(1000)), "item", "work"):
        pass
    drawn = capsys.readouterr().err.count("work:")
    assert 15 <= drawn <= 25  # a redraw per item would be 1000


def test_fit_in_a_log_prints_a_line_an_epoch(signal_root: Path, tmp_path: Path, capsys) -> None:
    main(["fit", f"--data.root={signal_root}", "--trainer.max_epochs=3", "--model.hidden_size=8",
          "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train_loss_epoch=" in line for line in lines)
    assert len(out) < 2000  # the bar's redraws: tens of kB
