"""`seqclass tune`: Optuna over a YAML space, SQLite study that resumes, pruning, best.yaml."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
import yaml

from pipeline.cli import main
from pipeline.core.errors import UserError

# installed with the package; a GPU image running `make test-gpu PY=python3` may lack it
optuna = pytest.importorskip("optuna")
from pipeline.training.tuning import PruneOnValidation, read_space  # noqa: E402

SPACE = {
    "model.hidden_size": {"type": "int", "low": 8, "high": 32, "log": True},
    "model.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "model.pooling": {"type": "categorical", "choices": ["last", "mean"]},
}


def test_a_search_resumes_from_its_study_and_writes_a_runnable_best_config(
    signal_root: Path, tmp_path: Path, capsys, caplog
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    out = tmp_path / "runs" / "tune"  # in the fit options' run folder, as no --out says otherwise
    args = ["tune", "--space", str(space), f"--trainer.default_root_dir={tmp_path / 'runs'}",
            f"--data.root={signal_root}",
            "--trainer.max_epochs=2", "--data.batch_size=8", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false"]  # fmt: skip
    main([*args, "--trials", "2"])
    main([*args, "--trials", "3"])  # one more: the first two come from study.db
    study = optuna.load_study(study_name="seqclass", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]  # the third may lag the two and be pruned
    assert states[:2] == ["COMPLETE"] * 2 and states[2] in ("COMPLETE", "PRUNED")
    assert len({t.params["model.hidden_size"] for t in study.trials}) > 1
    for t in study.trials:
        assert 8 <= t.params["model.hidden_size"] <= 32 and 1e-3 <= t.params["model.lr"] <= 1e-2
        assert (out / f"trial_{t.number}" / "checkpoints" / "best.ckpt").is_file()
    with (out / "trials.csv").open() as fh:
        assert [int(r["trial"]) for r in csv.DictReader(fh)] == [0, 1, 2]
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["model"]["hidden_size"] == study.best_trial.params["model.hidden_size"]
    # 10 training samples a class: fit would train without a val split, tune scores on one
    assert best["data"]["val_fraction"] == 0.15
    assert (out / "best.yaml").read_text().startswith("# Best of 3 trials: val_loss=")
    assert "tune: each trial is scored by its best val_loss on 8 val samples" in caplog.text
    assert f"trials in {out / 'study.db'}; best trial" in capsys.readouterr().out
    main(["fit", f"--config={out / 'best.yaml'}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false"])  # fmt: skip
    state = torch.load(out / "best" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["hidden_size"] == best["model"]["hidden_size"]
    image = matplotlib.image.imread(out / "tune.png")
    assert image.shape[1] > 300 and image[..., :3].std() > 0.05
    space.write_text(yaml.safe_dump({**SPACE, "model.dropout": {"type": "float", "low": 0,
                                                                 "high": 0.5}}))  # fmt: skip
    with pytest.raises(SystemExit):  # another space in the same study: not comparable
        main([*args, "--trials", "4"])
    assert "holds a search of other options or another space" in capsys.readouterr().err
    space.write_text(yaml.safe_dump(SPACE))
    with pytest.raises(SystemExit):  # another score
        main([*args, "--trials", "4", "--checkpoint.monitor=val_acc", "--checkpoint.mode=max"])
    assert "scored its trials on val_loss, not val_acc" in capsys.readouterr().err


def test_a_search_that_varies_the_losss_scale_must_score_on_a_metric(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    """Less label smoothing lowers the loss whatever the model learns: ranking such trials by
    val_loss would pick the least smoothing. Refused, naming the metric to score on instead."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(
        {**SPACE, "model.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}
    ))  # fmt: skip
    args = ["tune", "--space", str(space), "--out", str(tmp_path / "tune"), "--trials", "1",
            f"--data.root={signal_root}", "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]  # fmt: skip
    with pytest.raises(SystemExit):
        main(args)
    assert "varies model.label_smoothing, which changes how val_loss" in capsys.readouterr().err
    assert not (tmp_path / "tune").exists()
    main([*args, "--checkpoint.monitor=val_macro_f1", "--checkpoint.mode=max"])
    assert "best trial 0: val_macro_f1=" in capsys.readouterr().out


def test_a_search_without_any_val_split_is_refused(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    with pytest.raises(SystemExit):
        main(["tune", "--space", str(space), "--out", str(tmp_path / "tune"),
              f"--data.root={signal_root}", "--data.val_fraction=0"])  # fmt: skip
    assert "scores each trial on the val split, and these options leave none" in (
        capsys.readouterr().err
    )


def test_a_search_whose_trials_all_fail_says_so(
    signal_root: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from pipeline.training.lit_module import SequenceClassifier

    def diverge(self, batch, batch_idx):
        raise UserError("the training loss became nan at epoch 0")

    monkeypatch.setattr(SequenceClassifier, "training_step", diverge)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    with pytest.raises(SystemExit):
        main(["tune", "--space", str(space), "--out", str(tmp_path / "tune"), "--trials", "2",
              f"--data.root={signal_root}", "--trainer.max_epochs=1",
              "--trainer.enable_progress_bar=false"])  # fmt: skip
    assert "none of the 2 trials completed" in capsys.readouterr().err
    assert (tmp_path / "tune" / "trials.csv").read_text().count("fail") == 2


def test_a_lagging_trial_is_pruned_after_an_epoch() -> None:
    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    )
    for _ in range(2):  # two earlier trials at val_loss 0.5 after epoch 0
        trial = study.ask()
        trial.report(0.5, step=0)
        study.tell(trial, 0.5)

    def epoch_end(trial: optuna.Trial, loss: float) -> None:
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=0,
                                  callback_metrics={"val_loss": torch.tensor(loss)})  # fmt: skip
        PruneOnValidation(trial, "val_loss").on_validation_end(trainer, None)

    epoch_end(study.ask(), 0.4)  # ahead of the median: goes on
    with pytest.raises(optuna.TrialPruned, match="val_loss=2.0000"):
        epoch_end(study.ask(), 2.0)


def test_a_malformed_search_space_names_the_option(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("model.lr: {type: float, low: 0.001}\n")
    with pytest.raises(UserError, match="model.lr \\(float\\) needs high"):
        read_space(space)


def test_the_shipped_search_space_is_valid() -> None:
    space = read_space(Path("configs/tune/space.yaml"))
    assert {"model.hidden_size", "model.lr", "model.bidirectional"} <= space.keys()


def test_a_search_over_several_processes_is_refused_in_one_line(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "--space", str(space), "--out", str(tmp_path / "tune"),
              f"--data.root={signal_root}", "--trainer=configs/trainer/ddp.yaml",
              "--trainer.accelerator=cpu", "--trainer.devices=2",
              "--trainer.sync_batchnorm=false"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "start 2 (DDP)" in err and "--trainer.devices 1" in err
    assert not (tmp_path / "tune").exists()  # no study was started
