import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.core.errors import UserError
from pipeline.data.batching import pad_collate
from pipeline.training.datamodule import SequenceDataModule

from conftest import random_tree, write_npy


def test_normalization_statistics_come_from_the_train_split_only(tmp_path: Path) -> None:
    random_tree(tmp_path, {"a": 10, "b": 10}, channels=3)
    # Make test files wildly different: if they leaked into the stats, the mean would move.
    dm = SequenceDataModule(str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    for s in dm.labelled_samples:
        if s.split == "test":
            np.save(s.path, np.full((10, 3), 1000.0, dtype="f4"))
    dm.setup("fit")
    train = np.concatenate([np.load(s.path) for s in dm.splits["train"]]).astype("f8")
    torch.testing.assert_close(dm.channel_mean, torch.tensor(train.mean(0), dtype=torch.float32))
    torch.testing.assert_close(dm.channel_std, torch.tensor(train.std(0), dtype=torch.float32))


def test_pad_collate_shapes_and_lengths() -> None:
    items = [{"x": torch.ones(t, 2), "y": t % 2, "index": t} for t in (3, 5, 1)]
    batch = pad_collate(items)
    assert batch["x"].shape == (3, 5, 2)
    assert batch["lengths"].tolist() == [3, 5, 1]
    assert batch["x"][0, 3:].abs().sum() == 0


def test_inconsistent_channel_count_names_the_file(tmp_path: Path) -> None:
    random_tree(tmp_path, {"a": 5, "b": 5}, channels=2)
    odd = write_npy(tmp_path / "b" / "odd.npy", np.zeros((7, 4), dtype="f4"))
    dm = SequenceDataModule(str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(UserError, match=f"{odd}: has 4 channels"):
        dm.setup("fit")


def test_a_one_step_sample_read_as_a_row_vector_is_explained(tmp_path: Path) -> None:
    """A `[1, 2]` .npy is 2 steps of one channel (MATLAB's row vector): the channel error
    says so and how to store one step of 2 channels."""
    random_tree(tmp_path, {"a": 5, "b": 5}, channels=2)
    write_npy(tmp_path / "b" / "one_step.npy", np.zeros((1, 2), dtype="f4"))
    dm = SequenceDataModule(str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(UserError, match=r"has 1 channel but .*read as a row vector.*features"):
        dm.setup("fit")


def test_files_that_look_channels_by_time_are_named_with_the_transpose(tmp_path: Path) -> None:
    """`[3, 100]` files of slow tones (MATLAB's or aeon's channels x time) read as 3 steps of
    100 channels: a warning says why they look transposed; the same files `[100, 3]` pass."""
    rng, t = np.random.default_rng(0), np.arange(100) / 50
    for label, hertz in (("slow", 1.0), ("fast", 3.0)):
        for i in range(6):
            tones = np.sin(2 * np.pi * hertz * t + rng.uniform(0, 6, (3, 1)))  # 3 x 100
            write_npy(tmp_path / "rows" / label / f"{i}.npy", tones)
            write_npy(tmp_path / "columns" / label / f"{i}.npy", tones.T)
    with pytest.warns(UserWarning, match=r"about 3 rows of 100 columns.*x.T in NumPy"):
        SequenceDataModule(str(tmp_path / "rows")).setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SequenceDataModule(str(tmp_path / "columns")).setup("fit")


def test_max_train_length_drops_long_training_sequences(tmp_path: Path) -> None:
    random_tree(tmp_path, {"a": 8, "b": 8})  # 5-15 steps each
    dm = SequenceDataModule(str(tmp_path), max_train_length=10)
    dm.setup("fit")
    assert dm.splits["train"]
    assert all(np.load(s.path).shape[0] <= 10 for s in dm.splits["train"])


@pytest.mark.parametrize("world", [2, 3])
def test_processes_split_the_global_batch_and_evaluate_each_sample_once(
    tmp_path: Path, world: int
) -> None:
    random_tree(tmp_path, {"a": 12, "b": 9})
    loaders = []
    for rank in range(world):
        dm = SequenceDataModule(str(tmp_path), val_fraction=0.25, test_fraction=0.25, batch_size=6)
        dm.trainer = SimpleNamespace(world_size=world, global_rank=rank)
        dm.setup("fit")
        assert dm.device_batch_size == 6 // world
        loaders.append(dm.test_dataloader())
    seen = [i for loader in loaders for batch in loader for i in batch["index"].tolist()]
    assert sorted(seen) == list(range(len(dm.splits["test"])))  # no sample repeated or lost
    assert len(seen) % world  # uneven on purpose: a padding sampler would have repeated one


def test_a_global_batch_that_does_not_divide_over_the_processes_is_refused(tmp_path: Path):
    random_tree(tmp_path, {"a": 6, "b": 6})
    dm = SequenceDataModule(str(tmp_path), batch_size=30)
    dm.trainer = SimpleNamespace(world_size=4, global_rank=0)
    dm.setup("fit")
    with pytest.raises(UserError, match="divide evenly over 4 processes: use 28 or 32"):
        dm.train_dataloader()


def test_a_folder_of_row_vectors_trains_a_one_channel_model(tmp_path: Path) -> None:
    """`[1, 30]` files are 30 steps of one channel for the model too, not 30 channels."""
    from pipeline.apply.classify import load_classifier
    from pipeline.cli import main

    rng = np.random.default_rng(0)
    for label, shift in (("a", 0.0), ("b", 3.0)):
        for i in range(10):
            write_npy(tmp_path / "rows" / label / f"{i}.npy", rng.normal(shift, 1, (1, 30)))
    main(["fit", f"--data.root={tmp_path / 'rows'}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=8",
          "--model.kernel_features=168", f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    classifier = load_classifier(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert classifier.hparams.input_size == 1 and classifier.hparams.max_length == 30
    assert classifier.net.channel_mean.shape == (1,)
    assert 0.5 < float(classifier.net.channel_mean) < 2.5  # the mean over both classes' steps
