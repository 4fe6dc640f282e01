"""`seqclass cv`: stratified, seeded, grouped folds; one model per fold; mean ± std."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.discovery import Sample, assign_fold, discover

from conftest import random_tree


def held_out(samples: list[Sample], folds: int, seed: int = 0, pattern: str | None = None):
    """The val samples of each fold."""
    return [
        [
            s
            for s in assign_fold(samples, k, folds, seed=seed, group_pattern=pattern)
            if s.split == "val"
        ]
        for k in range(folds)
    ]


def test_folds_cover_train_and_val_once_stratified_and_seeded(tmp_path: Path) -> None:
    samples = discover(random_tree(tmp_path, {"a": 12, "b": 9}), (".npy",))
    samples[0] = Sample(samples[0].path, samples[0].label, "test")
    folds = held_out(samples, 3)
    paths = [s.path for fold in folds for s in fold]
    assert sorted(paths) == sorted(s.path for s in samples if s.split != "test")
    for fold in folds:
        assert Counter(s.label for s in fold) in ({"a": 4, "b": 3}, {"a": 3, "b": 3})
    assert held_out(samples, 3) == folds  # the seed fixes them
    assert held_out(samples, 3, seed=1) != folds
    tests = [s for s in assign_fold(samples, 1, 3, seed=0) if s.split == "test"]
    assert [s.path for s in tests] == [samples[0].path]


def test_groups_never_span_two_folds(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rows = ["path,label,group"]
    for i in range(24):
        label, subject = ("a", "b")[i % 2], f"s{i % 6}"
        path = root / label / f"{subject}_{i}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.zeros((5, 2), dtype="f4"))
        rows.append(f"data/{label}/{subject}_{i}.npy,{label},{subject}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    from_manifest = held_out(discover(tmp_path / "manifest.csv", (".npy",)), 3)
    from_names = held_out(discover(root, (".npy",)), 3, pattern=r"^(s\d+)_")
    for folds in (from_manifest, from_names):
        subjects = [{s.path.name.split("_")[0] for s in fold} for fold in folds]
        assert sum(map(len, subjects)) == len(set().union(*subjects)) == 6
    with pytest.raises(UserError, match="has no group"):
        held_out(discover(root, (".npy",)), 3, pattern=r"^(s[0-4])_")


def test_cv_trains_a_model_per_fold_and_summarizes_them(signal_root: Path, tmp_path: Path):
    out = tmp_path / "runs" / "cv"  # in the fit options' run folder, as no --out says otherwise
    main(
        [
            "cv",
            "--folds",
            "3",
            f"--trainer.default_root_dir={tmp_path / 'runs'}",
            f"--data.root={signal_root}",
            "--trainer.max_epochs=2",
            "--model.hidden_size=16",
            "--data.batch_size=8",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ]
    )
    summary = json.loads((out / "cv.json").read_text())
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2]
    assert sum(f["val_samples"] for f in folds) == 40  # train + val of 48; test keeps 8
    assert all(f["train_samples"] + f["val_samples"] == 40 for f in folds)
    for metric in ("val_acc", "val_macro_f1", "val_loss"):
        values = [f[metric] for f in folds]
        assert summary["mean"][metric] == pytest.approx(np.mean(values))
        assert summary["std"][metric] == pytest.approx(np.std(values, ddof=1))
    for f in folds:  # chosen by the training loss: the held-out fold only scores it
        state = torch.load(f["checkpoint"], weights_only=True)
        (checkpointing,) = [v for k, v in state["callbacks"].items() if "ModelCheckpoint" in k]
        assert checkpointing["monitor"] == "train_loss_epoch"
    image = matplotlib.image.imread(out / "cv.png")
    assert image.shape[1] > 300 and image[..., :3].std() > 0.05


def test_cv_refuses_to_choose_checkpoints_on_the_fold_it_scores(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit):
        main(["cv", "--folds", "2", "--out", str(tmp_path / "cv"), f"--data.root={signal_root}",
              "--checkpoint.monitor=val_acc", "--checkpoint.mode=max",
              "--trainer.enable_progress_bar=false"])  # fmt: skip
    assert "val_acc would choose the checkpoint on the held-out fold" in capsys.readouterr().err
