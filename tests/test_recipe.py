"""The training recipe of `seqclass fit`: step budget, automatic val split and batch size,
learning-rate schedule, NaN stop, old checkpoints, and the baselines beside a test run."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import EarlyStopping

from pipeline.apply.classify import load_classifier
from pipeline.cli import main
from pipeline.data.discovery import discover
from pipeline.data.sequence_files import load_sequence
from pipeline.models.kernel_head import KernelHead
from pipeline.prepare.sample_data import make_activity_recordings, make_signal_dataset
from pipeline.training import kernel_memo
from pipeline.training.baselines import fit_and_predict
from pipeline.training.budget import TrainingBudget
from pipeline.training.datamodule import SequenceDataModule
from pipeline.training.lit_module import LEGACY_HPARAMS

from conftest import random_tree

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def logged_epochs(run: Path) -> int:
    with (run / "version_0" / "metrics.csv").open() as fh:
        return len({r["epoch"] for r in csv.DictReader(fh) if r.get("train_loss_epoch")})


def test_step_budget_sets_the_epochs_and_small_data_trains_without_val(
    signal_root: Path, tmp_path: Path, caplog, recwarn
) -> None:
    """48 samples, 12 per class: too few for a val split; 40 train samples (8 test) at the
    automatic batch of 4 make 10 steps per epoch, so a 60-step budget is 6 epochs."""
    main(["fit", *QUIET, f"--data.root={signal_root}", "--budget.steps=60", "--budget.min_epochs=1",
          "--model.hidden_size=16", "--trainer.log_every_n_steps=1",
          f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert "no val split" in caplog.text and "60-step budget: 6 epochs of 10 steps" in caplog.text
    assert not [w for w in recwarn if "Setting it to 1000 epochs" in str(w.message)]  # not the plan
    assert logged_epochs(tmp_path) == 6
    checkpoint = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert state["monitor"] == "train_loss_epoch"
    hparams = checkpoint["hyper_parameters"]
    assert hparams["frontend"] == "conv" and hparams["stride"] == 2  # 80 steps: 40 recurrent ones
    with (tmp_path / "version_0" / "metrics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("lr-AdamW/pg1")]
    for group, peak in (("pg1", 1e-2), ("pg2", 1e-4)):  # the network, the kernel-feature head
        rates = [float(r[f"lr-AdamW/{group}"]) for r in rows]
        assert len(rates) == 60 and max(rates) == pytest.approx(peak, rel=1e-3)  # warm-up, then
        assert rates[0] < max(rates) and rates[-1] < rates[0]  # cosine decay below the start


def test_explicit_max_epochs_turns_the_budget_off(signal_root: Path, tmp_path: Path) -> None:
    main(["fit", *QUIET, f"--data.root={signal_root}", "--trainer.max_epochs=2",
          "--model.hidden_size=16", f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert logged_epochs(tmp_path) == 2


def test_val_split_and_batch_size_follow_the_train_split(tmp_path: Path) -> None:
    small = SequenceDataModule(str(make_signal_dataset(tmp_path / "s", 12, length_range=(20, 30))))
    small.setup("test")
    assert not small.splits["val"] and small.batch_size == 4  # 40 train samples / 8 -> 4
    large = SequenceDataModule(str(make_signal_dataset(tmp_path / "l", 40, length_range=(20, 30))))
    large.setup("test")
    assert len(large.splits["val"]) == 4 * 6  # 15 % of each class's 40
    assert large.batch_size == 8  # 112 train samples / 8 = 14 -> 8
    given = SequenceDataModule(str(tmp_path / "s"), val_fraction=0.25, batch_size=6)
    given.setup("test")
    assert len(given.splits["val"]) == 4 * 3 and given.batch_size == 6


def test_long_sequences_get_a_stride_that_bounds_the_recurrent_run(tmp_path: Path) -> None:
    root = make_signal_dataset(tmp_path / "long", 6, length_range=(600, 700))
    main(["fit", *QUIET, f"--data.root={root}", "--budget.steps=2", "--budget.min_epochs=1",
          "--model.hidden_size=8", "--model.conv_channels=8", "--model.max_recurrent_steps=64",
          f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    hparams = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)[
        "hyper_parameters"
    ]
    train = [np.load(p) for p in root.rglob("*.npy")]  # the longest is in train or test
    assert hparams["stride"] in {math.ceil(len(x) / 64) for x in train}
    assert hparams["stride"] >= math.ceil(600 / 64)


def test_a_loss_that_turns_nan_stops_with_the_learning_rate_and_checkpoint(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *QUIET, f"--data.root={signal_root}", "--model.lr=1e30",
              "--model.lr_schedule=constant", "--trainer.max_epochs=20", "--model.hidden_size=8",
              f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "the training loss became nan" in message and "learning rate 1e+30" in message
    assert "--model.lr" in message and "Last good checkpoint" in message


def test_checkpoints_from_before_the_front_ends_load_as_they_were_trained(
    signal_root: Path, tmp_path: Path
) -> None:
    """A checkpoint without the new options was trained without a front end: `test` and
    `classify` must rebuild it so, not with today's defaults."""
    main(["fit", *QUIET, f"--data.root={signal_root}", "--trainer.max_epochs=2",
          "--model.frontend=none", "--model.lr_schedule=constant", "--model.kernel_features=0",
          "--model.hidden_size=16",
          f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    for key in LEGACY_HPARAMS:
        del checkpoint["hyper_parameters"][key]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    main(["test", *QUIET, f"--data.root={signal_root}", f"--ckpt_path={old}",
          f"--trainer.default_root_dir={tmp_path / 'test'}"])  # fmt: skip
    (metrics,) = (tmp_path / "test").glob("version_*/metrics.json")
    assert json.loads(metrics.read_text())["num_samples"] == 8
    main(["classify", str(signal_root), "--checkpoint", str(old), "--out", str(tmp_path / "c.csv")])
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 1 + 48


@pytest.mark.parametrize("method", ["stats-lr", "minirocket", "multirocket-hydra"])
def test_baseline_scores_the_test_split_and_appears_in_the_test_report(
    method: str, tmp_path: Path, capsys
) -> None:
    if method != "stats-lr":
        pytest.importorskip("aeon")
    root = make_signal_dataset(tmp_path / "signals", 16, length_range=(60, 90))
    runs = tmp_path / "runs"
    main(["baseline", f"--method={method}", f"--data.root={root}",
          f"--trainer.default_root_dir={runs}"])  # fmt: skip
    metrics = json.loads((runs / "baseline" / method / "metrics.json").read_text())
    assert metrics["num_samples"] == 4 * 2 and metrics["data"]["test"] == {
        c: 2 for c in ("falling", "high", "low", "rising")
    }
    assert metrics["accuracy"] >= 0.5  # chance is 0.25; statistics can't tell rising from falling
    assert (runs / "baseline" / method / "report.md").is_file()
    main(["fit", *QUIET, f"--data.root={root}", "--trainer.max_epochs=1", "--model.hidden_size=8",
          f"--trainer.default_root_dir={runs}"])  # fmt: skip
    main(["test", *QUIET, f"--data.root={root}", f"--trainer.default_root_dir={runs}",
          f"--ckpt_path={runs / 'checkpoints' / 'best.ckpt'}"])  # fmt: skip
    (report,) = runs.glob("version_*/report.md")
    text = report.read_text()
    assert "## Beside the baselines" in text and f"| {method} (" in text


@pytest.mark.parametrize("method", ["multirocket", "hydra"])
def test_the_rocket_family_baselines_learn_the_signal_classes(method: str, tmp_path: Path) -> None:
    pytest.importorskip("aeon")
    root = make_signal_dataset(tmp_path / "signals", 12, length_range=(60, 90))
    samples = sorted(discover(root, (".npy",)), key=lambda s: s.path.name)
    names = sorted({s.label for s in samples})
    x = [load_sequence(s.path) for s in samples]
    y = np.array([names.index(s.label) for s in samples])
    train = np.arange(len(x)) % 3 != 0
    result = fit_and_predict(method, [x[i] for i in np.flatnonzero(train)], y[train],
                             test_x=[x[i] for i in np.flatnonzero(~train)], num_classes=4)  # fmt: skip
    assert result.probs.shape == (16, 4) and np.allclose(result.probs.sum(1), 1.0)
    assert (result.probs.argmax(1) == y[~train]).mean() >= 0.75  # chance is 0.25


NO_HYDRA = ["--model.kernel_hydra=false"]
MULTIROCKET_HYDRA = ["--model.kernel_pooling=[ppv,mpv,mipv,lspv]", "--model.kernel_difference=true",
                     "--model.kernel_hydra=true"]  # fmt: skip


@pytest.mark.parametrize(
    ("budget", "options"),
    [(kernel_memo.RAM_BUDGET, NO_HYDRA), (0, NO_HYDRA), (0, MULTIROCKET_HYDRA)],
    ids=["memory", "disk", "disk-multirocket-hydra"],
)
def test_training_reuses_each_samples_kernel_features(
    signal_root: Path, tmp_path: Path, monkeypatch, budget: int, options: list
) -> None:
    """Computed once per sample and kept (in memory, or on disk past the budget): the same
    features as computing them anew, whatever the other samples of the batch (bitwise for
    the shares of steps, MiniRocket's features)."""
    monkeypatch.setattr(kernel_memo, "RAM_BUDGET", budget)
    main(["fit", *QUIET, f"--data.root={signal_root}", "--budget.steps=20", "--budget.min_epochs=1",
          "--model.hidden_size=8", "--model.kernel_features=500", *options,
          f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    classifier = load_classifier(tmp_path / "checkpoints" / "best.ckpt")
    head = classifier.net.kernel_head
    if options == MULTIROCKET_HYDRA:  # a bias per kernel at least: 84 x 4 poolings x 2 series
        assert head.num_features == 672 + head.hydra.num_features
    else:
        assert head.num_features == 420  # rounded down to a multiple of 84
    datamodule = SequenceDataModule(str(signal_root), batch_size=8)
    datamodule.setup("fit")
    sizes = {"train": len(datamodule.splits["train"])}
    classifier._kernel_memo = kernel_memo.KernelFeatureMemo(
        head.num_features, sizes, tmp_path / "m"
    )
    for epoch in range(2):  # reshuffled: the second epoch is answered from the memo alone
        for batch in datamodule.train_dataloader():
            pooled, rows = classifier._kernel_memo.lookup("train", batch["index"])
            assert rows == (list(range(len(batch["index"]))) if epoch == 0 else [])
            batch.update(kernel_pooled=pooled, kernel_rows=rows,
                         kernel_indices=batch["index"][rows].tolist())  # fmt: skip
            kept = classifier._kept_kernel_features(batch, "train")
            anew = classifier.net.kernel_features(batch["x"], batch["lengths"])
            if options == MULTIROCKET_HYDRA:  # float32 sums (MPV, Hydra) round by the length
                torch.testing.assert_close(kept, anew, atol=1e-5, rtol=0)
            else:
                assert torch.equal(kept, anew)
    on_disk = list((tmp_path / "m").iterdir())  # unlinked temporary files: never listed
    assert on_disk == [] and (classifier._kernel_memo._splits["train"].rows is None) == (
        budget == 0
    )


def test_the_training_samples_kernel_features_are_computed_once_as_they_are_fitted(
    signal_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """Fitting the kernel features computes every training sample's (a split within
    KERNEL_FIT_SAMPLES), and training takes those from the memo: none is computed again. They
    are the features a fitted model computes anew (within float32 sums' rounding). A resumed
    fit computes its own, with the kernels of the checkpoint."""
    computed, seeded = [], {}
    pooled, store = KernelHead.pooled, kernel_memo.KernelFeatureMemo.store
    monkeypatch.setattr(KernelHead, "pooled", lambda head, x, lengths: computed.append(len(x))
                        or pooled(head, x, lengths))  # fmt: skip
    monkeypatch.setattr(kernel_memo.KernelFeatureMemo, "store", lambda memo, split, i, rows:
                        seeded.update(zip(i, rows.cpu(), strict=True))
                        or store(memo, split, i, rows))  # fmt: skip
    main(["fit", *QUIET, f"--data.root={signal_root}", "--trainer.max_epochs=2",
          "--model.hidden_size=8", "--model.kernel_features=500",
          f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    datamodule = SequenceDataModule(str(signal_root))
    datamodule.setup("fit")
    train = datamodule.splits["train"]
    assert computed == [] and not datamodule.splits.get("val")  # no val split: 12 per class
    assert sorted(seeded) == list(range(len(train)))

    net = load_classifier(tmp_path / "checkpoints" / "last.ckpt").net
    batch = datamodule.train_draw(len(train))
    anew = pooled(net.kernel_head, net.normalize(batch["x"]), batch["lengths"])
    torch.testing.assert_close(torch.stack([seeded[i] for i in range(len(train))]), anew,
                               rtol=1e-5, atol=1e-5)  # fmt: skip

    # a resumed fit computes them with the checkpoint's kernels, not with those just fitted
    main(["fit", *QUIET, f"--data.root={signal_root}", "--trainer.max_epochs=3",
          "--model.hidden_size=8", "--model.kernel_features=500", "--ckpt_path=last",
          f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert sum(computed) == len(train)


def test_the_kernel_head_alone_trains_tests_classifies_and_explain_says_why_not(
    signal_root: Path, tmp_path: Path, capsys, caplog
) -> None:
    runs = tmp_path / "runs"
    common = [*QUIET, f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}"]
    main(["fit", *common, "--model.recurrent=false", "--model.kernel_features=840"])
    assert re.search(
        r"\d+ fixed kernel features \(840 dilated-kernel, \d+ Hydra\) alone", caplog.text
    )
    best = runs / "checkpoints" / "best.ckpt"
    state = torch.load(best, weights_only=True)["state_dict"]
    assert not [k for k in state if k.startswith(("net.encoder.", "net.head."))]
    main(["test", *common, f"--ckpt_path={best}"])
    (metrics,) = runs.glob("version_*/metrics.json")
    assert json.loads(metrics.read_text())["accuracy"] >= 0.75  # chance is 0.25

    net = load_classifier(best).net
    samples = sorted(signal_root.rglob("*.npy"))[:3]
    x = [torch.from_numpy(load_sequence(p)) for p in samples]
    lengths = torch.tensor([len(s) for s in x])
    padded = torch.nn.utils.rnn.pad_sequence(x, batch_first=True)
    with torch.no_grad():  # the kernel head's logits, the same alone as padded in a batch
        batch = net(padded, lengths)
        alone = torch.cat([net(s[None], torch.tensor([len(s)])) for s in x])
        features = net.kernel_head.features(net.normalize(padded), lengths)
        torch.testing.assert_close(batch, alone)
        torch.testing.assert_close(batch, net.kernel_head(features))

    with pytest.raises(SystemExit):
        main(["explain", str(samples[0]), "--checkpoint", str(best), "--out", str(tmp_path)])
    assert "recurrent false" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # nothing would classify
        main(["fit", *common, "--model.recurrent=false", "--model.kernel_features=0"])


def test_ensemble_heads_each_classify_alone_and_predict_their_mean(
    signal_root: Path, tmp_path: Path
) -> None:
    """`--model.heads ensemble` trains each head on a loss of its own: each head alone
    classifies the test split, and the model's log-probabilities are the mean of theirs."""
    runs = tmp_path / "runs"
    common = [*QUIET, f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}"]
    main(["fit", *common, "--model.heads=ensemble", "--model.kernel_features=840"])
    best = runs / "checkpoints" / "best.ckpt"
    main(["test", *common, f"--ckpt_path={best}"])
    (metrics,) = runs.glob("version_*/metrics.json")
    assert json.loads(metrics.read_text())["accuracy"] >= 0.75  # chance is 0.25

    classifier = load_classifier(best)
    data = SequenceDataModule(str(signal_root))
    data.setup("test")
    test = data.splits["test"]
    x = [torch.from_numpy(load_sequence(s.path)) for s in test]
    y = torch.tensor([classifier.class_names.index(s.label) for s in test])
    lengths = torch.tensor([len(s) for s in x])
    padded = torch.nn.utils.rnn.pad_sequence(x, batch_first=True)
    net = classifier.net.eval()
    with torch.no_grad():
        recurrent, kernel = net.head_logits(padded, lengths)
        joined = (recurrent.log_softmax(-1) + kernel.log_softmax(-1)) / 2
        torch.testing.assert_close(net(padded, lengths), joined)
    for head in (recurrent, kernel):
        assert (head.argmax(-1) == y).float().mean() >= 0.75


@pytest.mark.parametrize(("val", "patience"), [(20, 10), (0, 25)])
def test_patience_is_a_tenth_of_the_epochs_on_the_val_loss_a_quarter_on_the_training_loss(
    val: int, patience: int
) -> None:
    """1,000 steps of 10 batches are 100 epochs: early stopping waits 10 of them on the val
    loss, 25 where only the training loss is there to watch."""
    data = SimpleNamespace(splits={"train": list(range(80)), "val": list(range(val))},
                           device_batch_size=8, batch_size=8, input_size=3,
                           hparams=SimpleNamespace(fold=None))  # fmt: skip
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    trainer = SimpleNamespace(datamodule=data, checkpoint_callback=None,
                              early_stopping_callbacks=[stopper],
                              fit_loop=SimpleNamespace(max_epochs=None))  # fmt: skip
    TrainingBudget(steps=1000).setup(trainer, None, "fit")
    assert trainer.fit_loop.max_epochs == 100 and stopper.patience == patience
    assert stopper.monitor == ("val_loss" if val else "train_loss_epoch")


@pytest.mark.parametrize("per_step", [False, True], ids=["per-sequence", "per-step"])
def test_balanced_class_weights_give_every_class_the_same_total_weight(
    tmp_path: Path, caplog, per_step: bool
) -> None:
    """scikit-learn's "balanced": a class's weight times its training samples (labelled steps,
    per step) is the same for every class; the weights go into the checkpoint, which tests."""
    if per_step:
        root = make_activity_recordings(tmp_path / "data", recordings=3, seconds=40.0)
        options = {"per_step": True, "window_length": 4.0, "window_hop": 2.0,
                   "signal": {"fs": 50, "steps": [{"window_stats": {"nperseg": 10, "hop": 5}}]}}  # fmt: skip
    else:
        root, options = random_tree(tmp_path / "data", {"common": 30, "rare": 6}), {}
    data = [f"--data.{name}={json.dumps(value)}" for name, value in options.items()]
    run = [*QUIET, f"--data.root={root}", *data, "--trainer.max_epochs=1",
           "--model.hidden_size=8", f"--trainer.default_root_dir={tmp_path / 'run'}"]  # fmt: skip
    main(["fit", *run, "--model.class_weights=balanced"])
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    weight = torch.load(checkpoint, weights_only=True)["state_dict"]["loss.weight"]
    module = SequenceDataModule(str(root), **options)
    module.setup("fit")
    counts = torch.from_numpy(module.train_class_counts()).float()
    assert counts.min() > 0 and counts.max() > 1.5 * counts.min()  # imbalanced
    torch.testing.assert_close(weight * counts, torch.full_like(counts, counts.sum() / len(counts)))
    assert "fit: balanced class weights:" in caplog.text
    main(["test", *run, f"--ckpt_path={checkpoint}"])  # a weighted checkpoint loads


def test_fit_names_imbalanced_classes_and_the_option_that_weighs_them(
    tmp_path: Path, caplog
) -> None:
    for name, classes in (("skewed", {"common": 30, "rare": 6}), ("even", {"a": 12, "b": 12})):
        root = random_tree(tmp_path / name, classes)
        caplog.clear()
        main(["fit", *QUIET, f"--data.root={root}", "--trainer.max_epochs=1",
              "--model.hidden_size=8", f"--trainer.default_root_dir={tmp_path / f'{name}-run'}"])  # fmt: skip
        noted = "fit: the classes are imbalanced (common 26, rare 5 in train)" in caplog.text
        assert noted == (name == "skewed") and ("class_weights balanced" in caplog.text) == noted
