"""Lightning DDP with two CPU processes (gloo), launched as a user would from the command line:
validation, test and predict over two processes give exactly what one process gives, and a
checkpoint resumes under another process count (and validates as one process does)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.cli import main
from pipeline.prepare.sample_data import make_signal_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "trainer"
TWO_PROCESSES = [f"--trainer={CONFIGS / 'ddp.yaml'}", "--trainer.accelerator=cpu",
                 "--trainer.precision=32-true", "--trainer.devices=2",
                 "--trainer.sync_batchnorm=false"]  # fmt: skip


def seqclass_ddp(*args: str) -> str:
    """Run `seqclass` in a fresh interpreter on two processes; its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, *TWO_PROCESSES],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[str]]:
    """Signals split 36 / 5 / 7 (odd val and test splits, so a sampler that pads would count a
    sample twice) and a model fitted on them for two epochs in one process."""
    base = tmp_path_factory.mktemp("ddp")
    flat = make_signal_dataset(base / "flat", samples_per_class=12, length_range=(40, 80))
    files = sorted(flat.rglob("*.npy"))
    random.Random(0).shuffle(files)
    for i, path in enumerate(files):
        split = "test" if i < 7 else "val" if i < 12 else "train"
        target = base / "data" / split / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    common = [f"--data.root={base / 'data'}", "--model.hidden_size=16", "--data.batch_size=8",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]  # fmt: skip
    main(["fit", *common, "--trainer.max_epochs=2", f"--trainer.default_root_dir={base / 'fit'}"])
    return base, common


def only_run(runs: Path) -> Path:
    (run,) = runs.glob("version_*")  # rank 0 alone makes the run folder
    return run


def test_test_over_two_processes_equals_one(trained) -> None:
    base, common = trained
    best = f"--ckpt_path={base / 'fit' / 'checkpoints' / 'best.ckpt'}"
    main(["test", *common, best, f"--trainer.default_root_dir={base / 'one'}"])
    seqclass_ddp("test", *common, best, f"--trainer.default_root_dir={base / 'two'}")
    one = json.loads((only_run(base / "one") / "metrics.json").read_text())
    two = json.loads((only_run(base / "two") / "metrics.json").read_text())
    assert one["num_samples"] == 7 and sum(map(sum, one["confusion_matrix"])) == 7
    assert two == one  # accuracy, macro-F1, per-class precision/recall, confusion matrix


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_predictions_over_two_processes_hold_every_sample_once(trained) -> None:
    base, common = trained
    best = f"--ckpt_path={base / 'fit' / 'checkpoints' / 'best.ckpt'}"
    main(["predict", *common, best, f"--trainer.default_root_dir={base / 'p1'}"])
    seqclass_ddp("predict", *common, best, f"--trainer.default_root_dir={base / 'p2'}")
    one = read_csv(only_run(base / "p1") / "predictions.csv")
    two = read_csv(only_run(base / "p2") / "predictions.csv")
    assert len(two) == len({row["path"] for row in two}) == 7
    assert [(r["path"], r["label"], r["predicted"]) for r in two] == [
        (r["path"], r["label"], r["predicted"]) for r in one
    ]
    for a, b in zip(one, two, strict=True):
        for key in (k for k in a if k.startswith("prob_")):
            assert float(b[key]) == pytest.approx(float(a[key]), abs=2e-6)


def test_a_one_process_checkpoint_resumes_on_two(trained) -> None:
    base, common = trained
    last = base / "resume" / "last.ckpt"
    last.parent.mkdir()
    shutil.copy(base / "fit" / "checkpoints" / "last.ckpt", last)
    runs = base / "resumed"
    out = seqclass_ddp("fit", *common, f"--ckpt_path={last}", "--trainer.max_epochs=3",
                       f"--trainer.default_root_dir={runs}")  # fmt: skip
    assert "fit: 3 epochs" in out
    state = torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)
    # the global batch (8) is kept: 36 samples take 5 steps an epoch on one process or on two
    assert (state["epoch"], state["global_step"]) == (2, 15)
    logged = [row for row in read_csv(only_run(runs) / "metrics.csv") if row.get("val_loss")]
    assert [row["epoch"] for row in logged] == ["2"]
    # the last epoch's validation over two processes equals `validate` of its weights on one
    main(["validate", *common, f"--ckpt_path={runs / 'checkpoints' / 'last.ckpt'}",
          f"--trainer.default_root_dir={base / 'v'}"])  # fmt: skip
    (one,) = [row for row in read_csv(only_run(base / "v") / "metrics.csv") if row.get("val_loss")]
    metrics = [key for key in one if key.startswith("val_") and one[key]]
    assert {"val_loss", "val_acc"} <= set(metrics)
    for key in metrics:
        assert float(logged[0][key]) == pytest.approx(float(one[key]), abs=1e-6), key


def test_cv_over_two_processes_reports_once_what_one_process_scores(trained) -> None:
    base, common = trained
    out = base / "cv"
    printed = seqclass_ddp("cv", "--folds", "2", "--out", str(out), *common,
                           "--trainer.max_epochs=1")  # fmt: skip
    assert printed.count("cv: 2 folds") == 1  # the first process reports
    summary = json.loads((out / "cv.json").read_text())
    assert [fold["val_samples"] for fold in summary["folds"]] == [21, 20]  # 36 + 5, dealt
    for fold in summary["folds"]:
        runs = base / f"cv_validate_{fold['fold']}"
        main(["validate", *common, f"--ckpt_path={fold['checkpoint']}",
              f"--trainer.default_root_dir={runs}"])  # the fold from the checkpoint  # fmt: skip
        (one,) = [row for row in read_csv(only_run(runs) / "metrics.csv") if row.get("val_loss")]
        for key in ("val_acc", "val_loss"):
            assert float(one[key]) == pytest.approx(fold[key], abs=1e-6), key


def test_leaving_the_process_group_tears_it_down_once_every_rank_is_there(tmp_path) -> None:
    """What every command does last: a group left to the interpreter's exit can abort a rank."""
    import torch.distributed as dist

    from pipeline.core.distributed import leave_process_group

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)  # fmt: skip
    leave_process_group()
    assert not dist.is_initialized()
    leave_process_group()  # outside a group: nothing to leave
