"""End-to-end: the `seqclass` command as a user runs it, on tiny generated data."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.cli import main
from pipeline.training.datamodule import SequenceDataModule

from conftest import random_tree, write_npy

FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--model.hidden_size=16", "--data.batch_size=8"]  # fmt: skip


def seqclass(*args: str) -> None:
    main(
        [args[0], *FAST, *args[1:]]
        if args[0] in ("fit", "validate", "test", "predict")
        else list(args)
    )


def run_dirs(runs: Path) -> list[Path]:
    return sorted(runs.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def test_fit_test_predict(signal_root: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    common = [
        f"--data.root={signal_root}",
        f"--trainer.default_root_dir={runs}",
        "--data.val_fraction=0.15",
    ]  # `validate` needs a val split; 12 per class get none
    seqclass("fit", *common, "--trainer.max_epochs=3", "--model.bidirectional=true")
    best = runs / "checkpoints" / "best.ckpt"
    assert best.is_file() and (runs / "checkpoints" / "last.ckpt").is_file()
    config = yaml.safe_load((run_dirs(runs)[0] / "config.yaml").read_text())
    assert config["trainer"]["devices"] == 1  # one GPU where there are several: ddp.yaml for all
    assert (run_dirs(runs)[0] / "metrics.csv").is_file()
    assert list(run_dirs(runs)[0].glob("events.out.tfevents.*"))

    ckpt = torch.load(best, weights_only=True)  # plain data only: loads without running code
    hparams = ckpt["hyper_parameters"]
    assert hparams["class_names"] == ["falling", "high", "low", "rising"]
    assert hparams["input_size"] == 3
    assert ckpt["state_dict"]["net.channel_std"].shape == (3,)
    assert not torch.equal(ckpt["state_dict"]["net.channel_mean"], torch.zeros(3))

    # test and predict need nothing but the data and the checkpoint
    seqclass("test", *common, f"--ckpt_path={best}")
    metrics = json.loads((run_dirs(runs)[-1] / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "confusion_matrix", "class_names"} <= metrics.keys()
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (4, 4)
    assert confusion.sum() == metrics["num_samples"] == 8  # 15 % of 12 per class, rounded
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum(), abs=1e-6)
    assert "test: accuracy=" in capsys.readouterr().out

    seqclass("validate", *common, f"--ckpt_path={best}")
    assert "validate: val_acc=" in capsys.readouterr().out

    seqclass("predict", f"--trainer.default_root_dir={runs}", f"--ckpt_path={best}",
             f"--data.predict_root={signal_root}")  # fmt: skip
    with (run_dirs(runs)[-1] / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 48
    assert {Path(r["path"]) for r in rows} == set(signal_root.rglob("*.npy"))
    for row in rows:
        probs = [float(row[f"prob_{c}"]) for c in hparams["class_names"]]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert row["predicted"] == hparams["class_names"][int(np.argmax(probs))]
        assert row["label"] == Path(row["path"]).parent.name


def test_test_and_predict_split_the_data_as_the_fit_did(
    signal_root: Path, tmp_path: Path, caplog
) -> None:
    """Without the fit's split options, `test` would score samples the model trained on."""
    runs = tmp_path / "runs"
    split = {"seed": 3, "test_fraction": 0.3}
    options = [f"--data.{name}={value}" for name, value in split.items()]
    seqclass("fit", f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
             "--trainer.max_epochs=1", *options)  # fmt: skip
    held_out = {
        str(s.path)
        for s in SequenceDataModule(str(signal_root), **split).labelled_samples
        if s.split == "test"
    }
    default = {
        str(s.path) for s in SequenceDataModule(str(signal_root)).labelled_samples
        if s.split == "test"
    }  # fmt: skip
    assert default - held_out  # the default split would score training samples

    common = [f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
              f"--ckpt_path={runs / 'checkpoints' / 'last.ckpt'}"]  # fmt: skip
    seqclass("test", *common)
    assert (
        "test: the data is split and read as the checkpoint's fit did: test_fraction=0.3, seed=3"
        in caplog.text
    )
    with (run_dirs(runs)[-1] / "test_predictions.csv").open() as fh:
        assert {row["path"] for row in csv.DictReader(fh)} == held_out
    seqclass("predict", *common)  # the test split, as the fit held it out
    with (run_dirs(runs)[-1] / "predictions.csv").open() as fh:
        assert {row["path"] for row in csv.DictReader(fh)} == held_out

    with pytest.warns(UserWarning, match="seed=5, but the checkpoint's fit had seed=3"):
        seqclass("test", *common, "--data.seed=5")


def test_a_checkpoint_alone_tests_on_the_fits_data_into_the_fits_folder(
    signal_root: Path, tmp_path: Path, monkeypatch, caplog, capsys
) -> None:
    """`test --ckpt_path RUN/checkpoints/best.ckpt` with nothing else: the fit's root, split and
    run folder, from the fit's folder (its relative root) or another (the root it resolved); an
    error naming the root once it has moved."""
    monkeypatch.chdir(signal_root.parent)
    run = tmp_path / "runs" / "mine"
    seqclass("fit", f"--data.root={signal_root.name}", f"--trainer.default_root_dir={run}",
             "--trainer.max_epochs=1", "--data.seed=3")  # fmt: skip
    best = run / "checkpoints" / "best.ckpt"
    assert f"to test it: seqclass test --ckpt_path {best}\n" in capsys.readouterr().out
    held_out = {
        str(s.path.resolve())
        for s in SequenceDataModule(str(signal_root), seed=3).labelled_samples
        if s.split == "test"
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for folder, root in ((signal_root.parent, signal_root.name), (elsewhere, str(signal_root))):
        monkeypatch.chdir(folder)
        caplog.clear()
        main(["test", "--trainer.enable_progress_bar=false", f"--ckpt_path={best}"])
        assert f"seed=3, root={root}" in caplog.text
        tested = run_dirs(run)[-1]  # beside the fit's own run folder, not ./runs
        with (tested / "test_predictions.csv").open() as fh:
            assert {str(Path(row["path"]).resolve()) for row in csv.DictReader(fh)} == held_out
        assert not run_dirs(folder / "runs")  # ./runs, the default, was not used

    signal_root.rename(tmp_path / "moved")
    with pytest.raises(SystemExit):
        main(["test", f"--ckpt_path={best}"])
    assert (
        f"the checkpoint's fit read {signal_root}, which is not found from here: pass "
        "--data.root DIR." in capsys.readouterr().err
    )


def test_a_second_run_in_the_same_folder_is_named_apart(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    """The earlier run's best.ckpt stays; the new run's -v1 names are said, not left to find."""
    common = [f"--data.root={signal_root}", f"--trainer.default_root_dir={tmp_path / 'runs'}",
              "--trainer.max_epochs=1"]  # fmt: skip
    seqclass("fit", *common)
    first = capsys.readouterr().out
    assert "note:" not in first and "fit: 1 epoch," in first
    checkpoints = tmp_path / "runs" / "checkpoints"
    earlier = torch.load(checkpoints / "best.ckpt", weights_only=True)["state_dict"]
    seqclass("fit", *common, "--seed_everything=1")
    out = capsys.readouterr().out
    assert f"best checkpoint: {checkpoints / 'best-v1.ckpt'}" in out
    assert "this run's are best-v1.ckpt and last-v1.ckpt" in out
    kept = torch.load(checkpoints / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(kept[k], earlier[k]) for k in earlier)
    newer = torch.load(checkpoints / "best-v1.ckpt", weights_only=True)["state_dict"]
    assert not torch.equal(newer["net.head.weight"], earlier["net.head.weight"])


def test_resume_from_last_checkpoint(signal_root: Path, tmp_path: Path, caplog) -> None:
    runs = tmp_path / "runs"
    common = [f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}"]
    seqclass("fit", *common, "--trainer.max_epochs=2", "--data.seed=3")
    first = torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)
    seqclass("fit", *common, "--trainer.max_epochs=6", "--ckpt_path=last")  # train longer
    assert "fit: the data is split and read as the checkpoint's fit did: seed=3" in caplog.text
    resumed = torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 1 and resumed["epoch"] == 5
    steps = resumed["global_step"]
    assert steps == 3 * first["global_step"] > 20  # past the first run's schedule (20 at least)
    # the one-cycle schedule is laid over the longer run, from the steps the first one did
    assert resumed["lr_schedulers"][0]["total_steps"] == steps
    with (run_dirs(runs)[-1] / "metrics.csv").open() as fh:  # the resumed run's
        logged = {int(r["step"]): float(r[k]) for r in csv.DictReader(fh) for k in r
                  if k.endswith("pg1") and r[k]}  # fmt: skip
    lr = resumed["hyper_parameters"]["lr"]
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    fresh = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    expected = []
    for _ in range(steps):
        expected.append(fresh.get_last_lr()[0])
        optimizer.step()
        fresh.step()
    assert logged and min(logged) >= first["global_step"], logged
    for step, rate in logged.items():
        assert rate == pytest.approx(expected[step], rel=1e-5), step


def test_an_interrupted_fit_says_how_to_resume_and_resumes(
    signal_root: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from pipeline.training.lit_module import SequenceClassifier

    def ctrl_c_in_the_third_epoch(self) -> None:
        if self.current_epoch == 2:
            raise KeyboardInterrupt

    runs = tmp_path / "runs"
    common = [f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}"]
    with monkeypatch.context() as patch:
        patch.setattr(SequenceClassifier, "on_train_epoch_start", ctrl_c_in_the_third_epoch)
        with pytest.raises(SystemExit):
            seqclass("fit", *common, "--trainer.max_epochs=4")
    out = capsys.readouterr().out
    assert f"fit interrupted: {runs / 'checkpoints' / 'last.ckpt'} holds the last saved" in out
    assert torch.load(runs / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    seqclass("fit", *common, "--trainer.max_epochs=4", "--ckpt_path=last")
    assert "fit: 4 epochs" in capsys.readouterr().out
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(SystemExit):  # an error is no interruption: nothing to say of resuming
        seqclass("fit", f"--data.root={tmp_path / 'empty'}", f"--trainer.default_root_dir={runs}")
    captured = capsys.readouterr()
    assert "no sample files" in captured.err and "interrupted" not in captured.out


def test_learns_the_sample_data(tmp_path: Path) -> None:
    from pipeline.prepare.sample_data import make_signal_dataset

    root = make_signal_dataset(tmp_path / "d", samples_per_class=30, length_range=(60, 120))
    runs = tmp_path / "runs"
    main(["fit", "--config=configs/demo.yaml", f"--data.root={root}",
          f"--trainer.default_root_dir={runs}", "--trainer.enable_progress_bar=false",
          "--trainer.max_epochs=25"])  # fmt: skip
    main(["test", "--config=configs/demo.yaml", f"--data.root={root}",
          f"--trainer.default_root_dir={runs}", f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"])  # fmt: skip
    metrics = json.loads((run_dirs(runs)[-1] / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8, metrics  # chance is 0.25


def _nan_file(root: Path) -> str:
    random_tree(root, {"a": 6, "b": 6})
    bad = root / "a" / "0.npy"
    np.save(bad, np.array([[1.0, np.nan]] * 5, dtype="f4"))
    return str(bad)


def _empty_sample(root: Path) -> str:
    random_tree(root, {"a": 6, "b": 6})
    return str(write_npy(root / "b" / "0.npy", np.zeros((0, 2), dtype="f4")))


def _channels_by_time(root: Path) -> str:
    """Samples stored as MATLAB holds sequences: [channels, T], T varying."""
    for i in range(12):
        write_npy(root / "ab"[i % 2] / f"{i}.npy", np.zeros((2, 20 + i), dtype="f4"))
    return "Both hold 2 rows: if the rows are channels (MATLAB's channels x time)"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: (root.mkdir(), "no samples found")[1], None),
        (_channels_by_time, None),
        (lambda root: (random_tree(root, {"a": 6}), "at least two class")[1], None),
        (
            lambda root: (random_tree(root, {"a": 6, "b": 1}), "too few for a train/val/test")[1],
            None,
        ),
        (_nan_file, "NaN or Inf"),
        (_empty_sample, "is empty"),
    ],
)
def test_fit_on_bad_data_exits_with_a_clear_message(tmp_path: Path, capsys, make, message) -> None:
    root = tmp_path / "data"
    named = make(root)
    with pytest.raises(SystemExit) as exit_info:
        seqclass("fit", f"--data.root={root}", f"--trainer.default_root_dir={tmp_path / 'runs'}",
                 "--trainer.max_epochs=1")  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert (message or named) in err
    if message:
        assert named in err  # the offending file is named
    assert not run_dirs(tmp_path / "runs")  # no empty run folder to take the next number


def test_predict_with_wrong_channel_count(signal_root: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    seqclass("fit", f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
             "--trainer.max_epochs=1")  # fmt: skip
    other = random_tree(tmp_path / "other", {"a": 2}, channels=5)
    with pytest.raises(SystemExit):
        seqclass("predict", f"--trainer.default_root_dir={runs}", f"--data.predict_root={other}",
                 f"--ckpt_path={runs / 'checkpoints' / 'last.ckpt'}")  # fmt: skip
    assert "samples have 5 channels but the model was trained on 3" in capsys.readouterr().err
    assert [p.name for p in run_dirs(runs)] == ["version_0"]  # the fit's; the failed run left none


@pytest.mark.parametrize("config", sorted(Path("configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(config: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={config}", "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "class_path" not in capsys.readouterr().err
