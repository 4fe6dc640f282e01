"""The LightningDataModule: samples found and split, train-split normalization statistics, loaders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, SequentialSampler

from feature_extractors.signal import RECORDING_SUFFIXES, SignalPreprocessing
from pipeline.core.errors import UserError, check_ranges
from pipeline.data.batching import Batch, LengthBatchSampler, SequenceDataset, pad_collate
from pipeline.data.cache import feature_path
from pipeline.data.discovery import (
    Sample,
    assign_fold,
    assign_splits,
    class_names_of,
    discover,
    discover_unlabelled,
    same_columns,
)
from pipeline.data.intervals import is_interval_csv, read_intervals, step_labels, window_samples
from pipeline.data.sequence_files import (
    SEQUENCE_SUFFIXES,
    TRANSPOSE_FIX,
    load_sequence,
    looks_channels_first,
    read_feature_settings,
    row_vector_note,
    sequence_shape,
)
from pipeline.prepare.signals import preprocess_recordings, raise_failures, signal_cache_dir

VAL_FRACTION = 0.15  # the val share when `val_fraction` is None and the data allows one
# The options that decide which samples each split holds and how recordings are cut into them:
# test, predict and a resumed fit must use the fit's (the checkpoint keeps them).
SPLIT_OPTIONS = (
    "val_fraction", "test_fraction", "seed", "fold", "folds", "group_pattern",
    "window_length", "window_hop", "per_step",
)  # fmt: skip


def channel_stats(sequences: Iterable[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over all time steps of `[T, D]` arrays.

    Sums are float64. A constant channel gets std 1 so that normalizing never divides by zero.
    """
    total = total_sq = None
    count = 0
    for x in sequences:
        x = np.asarray(x, dtype=np.float64)
        s, sq = x.sum(0), np.square(x).sum(0)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += x.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std[std < 1e-8 * np.maximum(1.0, np.abs(mean))] = 1.0
    return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


class SequenceDataModule(pl.LightningDataModule):
    """Class-folder trees of `[T, D]` sequence files, split into train/val/test.

    Args:
        root: data folder (``ROOT/<class>/<sample>``, optionally under ``train|val|test``) or a
            manifest CSV ``path,label[,split]``.
        predict_root: file or folder to predict on; defaults to the test split of `root`.
        val_fraction: share of each class moved from train to val when no val split is given.
            None: 0.15 when the train samples number at least 20 per class on average, else
            none (too few to choose a checkpoint by, and each one is worth more for training:
            checkpoints and early stopping then follow the training loss).
        test_fraction: share of each class moved from train to test when no test split is given.
        seed: seed of the stratified split.
        batch_size: samples per optimizer step over all processes (the global batch): with N
            processes (devices x nodes) each loads `batch_size / N`, so a config trains the
            same way on one device or many. It must divide evenly by N. None: 32, or less for
            small train splits (an eighth of the train split, as a power of two, at least 4).
        num_workers: DataLoader worker processes.
        max_train_length: drop training sequences longer than this many steps (None keeps all).
        signal: preprocessing that turns raw recordings (.wav, .mat, .csv, .npy, .npz, .edf,
            .bdf) into the sequences (filters, resampling, VMD/EMD modes, ...); computed once
            and cached.
        cache_dir: where preprocessed recordings are cached, in a subfolder per setting
            (default: ``<root>-cache`` beside the data folder).
        window_length: with an interval CSV as `root` (``file,start,end,label``, seconds):
            seconds per window cut from the long recordings.
        window_hop: seconds between window starts (default: `window_length`, no overlap).
        per_step: label every time step (sequence-to-sequence) instead of each window.
        fold: cross-validation fold to hold out as the val split (``seqclass cv`` sets it):
            the train and val samples are dealt into `folds` stratified folds from `seed`.
        folds: number of cross-validation folds.
        group_pattern: regular expression finding a sample's group (subject, speaker, ...) in
            its file name (its first group, or the whole match), so that no group is spread
            over two folds; a manifest's ``group`` column does the same.
    """

    def __init__(
        self,
        root: str | None = None,
        predict_root: str | None = None,
        val_fraction: float | None = None,
        test_fraction: float = 0.15,
        seed: int = 0,
        batch_size: int | None = None,
        num_workers: int = 0,
        max_train_length: int | None = None,
        signal: SignalPreprocessing | None = None,
        cache_dir: str | None = None,
        window_length: float | None = None,
        window_hop: float | None = None,
        per_step: bool = False,
        fold: int | None = None,
        folds: int = 5,
        group_pattern: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["signal"])
        check_ranges("data", self.hparams, {
            "val_fraction": "[0, 1)", "test_fraction": "[0, 1)", "batch_size": ">= 1",
            "num_workers": ">= 0", "max_train_length": ">= 1", "window_length": "> 0",
            "window_hop": "> 0", "folds": ">= 2",
        })  # fmt: skip
        self.signal = SignalPreprocessing(**signal) if isinstance(signal, dict) else signal
        if self.signal is not None:
            try:  # now, not after hours of preprocessing
                self.signal.check_device()
            except ValueError as err:
                raise UserError(f"data.{err}") from None
        self.root = root
        self.predict_root = predict_root
        self.splits: dict[str, list[Sample]] = {}
        self.columns: list[str] | None = None  # the channel names of the samples set up last
        self.channel_mean: torch.Tensor | None = None
        self.channel_std: torch.Tensor | None = None
        self._labelled: list[Sample] | None = None
        self._signal_settings: dict[str, dict] = {}  # per root, once preprocessed
        self._class_names: list[str] | None = None
        self.test_split_drawn = False  # the test split drawn from train, not given, after setup
        self.per_step = per_step
        self.step_labels: dict[Path, np.ndarray] = {}  # per-step class indices of recordings
        self._lengths: dict[str, list[int]] = {}  # steps of each evaluation sample, per split
        self.longest_train_length: int | None = None  # steps, after setup("fit")

    @property
    def labelled_samples(self) -> list[Sample]:
        """All labelled samples of `root` with their split assigned (discovered once)."""
        if self._labelled is None:
            if self.root is None:
                raise UserError(
                    "no data given: pass --data.root DIR (or a manifest CSV); to label new "
                    "files with predict, --data.predict_root FILES_OR_FOLDER."
                )
            if is_interval_csv(self.root):
                self._labelled = self._held_out_fold(self._windows())
                return self._labelled
            if self.per_step:
                raise UserError(
                    "data.per_step labels every time step; it needs an interval CSV "
                    f"(file,start,end,label) as data.root, not {self.root}."
                )
            samples = discover(self.root, self._suffixes)
            self._class_names = class_names_of(samples)
            hp = self.hparams
            val_fraction = hp.val_fraction
            if val_fraction is None:
                train = sum(s.split == "train" for s in samples)
                val_fraction = VAL_FRACTION if train >= 20 * len(self._class_names) else 0.0
            self.test_split_drawn = hp.test_fraction > 0 and all(s.split != "test" for s in samples)
            samples = assign_splits(samples, val_fraction, hp.test_fraction, seed=hp.seed)
            self._labelled = self._held_out_fold(self._preprocessed(self.root, samples))
        return self._labelled

    def _held_out_fold(self, samples: list[Sample]) -> list[Sample]:
        hp = self.hparams
        if hp.fold is None:
            return samples
        return assign_fold(samples, hp.fold, hp.folds, seed=hp.seed, group_pattern=hp.group_pattern)

    @property
    def class_names(self) -> list[str]:
        """Sorted class names of `root` (a model's, after `evaluate_with_classes`)."""
        self.labelled_samples  # noqa: B018 -- discovered on first use
        return self._class_names

    def evaluate_with_classes(self, model_classes: list[str]) -> None:
        """Label the samples by the index of their class in `model_classes` (a model's), for
        data that holds only some of its classes: a test folder without a rare class, say."""
        unknown = sorted(set(self.class_names) - set(model_classes))
        if unknown or self.per_step:  # per-step labels are indexed when the windows are made
            raise UserError(
                f"{self.root}: classes {self.class_names} differ from the model's {model_classes}"
                f"{f' ({unknown} unknown to it)' if unknown else ''}. Evaluate on data whose "
                "class folders are the model's classes, or some of them."
            )
        self._class_names = list(model_classes)

    def _windows(self) -> list[Sample]:
        """Windowed samples of the long recordings an interval CSV labels."""
        hp = self.hparams
        if self.signal is None or hp.window_length is None:
            raise UserError(
                f"{self.root} labels time intervals of long recordings: set data.signal (at "
                "least its fs, for files that store no rate) and data.window_length (seconds)."
            )
        intervals = read_intervals(self.root)
        self._class_names = sorted({i.label for found in intervals.values() for i in found})
        if len(self._class_names) < 2:
            raise UserError(f"{self.root}: a classifier needs at least two labels.")
        index = {name: k for k, name in enumerate(self._class_names)}
        recordings = self._preprocessed(self.root, [Sample(p, None) for p in intervals])
        samples = []
        for recording in recordings:
            with np.load(recording.path, allow_pickle=False) as npz:
                times = npz["times"]
            labels = step_labels(times, intervals[recording.source], index)
            self.step_labels[recording.path] = labels
            samples += window_samples(
                recording.path,
                recording.source,
                times=times,
                labels=labels,
                class_names=self._class_names,
                length=hp.window_length,
                hop=hp.window_hop or hp.window_length,
                fractions=(
                    VAL_FRACTION if hp.val_fraction is None else hp.val_fraction,
                    hp.test_fraction,
                ),
                per_step=self.per_step,
            )
        splits = {s.split for s in samples}
        if "train" not in splits:
            raise UserError(
                f"{self.root}: no window fits the train part of any recording; use shorter "
                "windows or smaller val/test fractions."
            )
        return samples

    @property
    def input_size(self) -> int:
        """Channels per time step (D), read from the first sample."""
        return sequence_shape(self.labelled_samples[0].path)[1]

    @property
    def feature_settings(self) -> dict | None:
        """How the sequences of `root` were made (None for sequences made elsewhere)."""
        return self.settings_of(self.root)

    def settings_of(self, root: str | None) -> dict | None:
        """How the sequences of `root` (or `predict_root`) were made, after `setup`."""
        if root is None:
            return None
        if self.signal is not None:
            if root == self.root:
                self.labelled_samples  # noqa: B018 -- preprocesses on first use
            return self._signal_settings[str(root)]
        return read_feature_settings(root)

    @property
    def _suffixes(self) -> tuple[str, ...]:
        return RECORDING_SUFFIXES if self.signal is not None else SEQUENCE_SUFFIXES

    def _preprocessed(self, root: str, samples: list[Sample]) -> list[Sample]:
        """With `signal` set: the samples' cached sequences, computed where missing."""
        if self.signal is None:
            return samples
        preprocessing = self.signal.for_files([s.path for s in samples])
        settings = preprocessing.settings()
        out = signal_cache_dir(root, settings, self.hparams.cache_dir)
        raise_failures(preprocess_recordings(root, out, preprocessing, samples=samples), out)
        self._signal_settings[str(root)] = settings
        base = Path(root)
        return [replace(s, path=feature_path(s.path, base, out), source=s.path) for s in samples]

    def split_counts(self) -> dict[str, dict[str, int]]:
        """Samples (or windows) per class in each split, after `setup`."""
        return {
            split: dict(sorted(Counter(s.label for s in self.splits[split]).items()))
            for split in ("train", "val", "test")
            if self.splits.get(split)
        }

    def train_class_counts(self) -> np.ndarray:
        """Training samples per class `[K]` (per step: labelled steps), after `setup`."""
        counts = np.zeros(len(self.class_names), dtype=np.int64)
        index = {name: k for k, name in enumerate(self.class_names)}
        for s in self.splits["train"]:
            if self.per_step:
                labels = self.step_labels[s.path][s.window]
                counts += np.bincount(labels[labels >= 0], minlength=len(counts))
            else:
                counts[index[s.label]] += 1
        return counts

    def split_channels(self, split: str) -> int:
        """Channels per time step of the samples of `split` (after `setup`)."""
        return sequence_shape(self.splits[split][0].path)[1]

    def setup(self, stage: str) -> None:
        if stage == "predict":
            if self.predict_root is not None:
                samples = discover_unlabelled(self.predict_root, self._suffixes)
                self.splits["predict"] = self._preprocessed(self.predict_root, samples)
            else:
                self.splits["predict"] = [s for s in self.labelled_samples if s.split == "test"]
            if not self.splits["predict"]:
                raise UserError(
                    f"{self.root}: the test split is empty, so predict has nothing to label; give "
                    "--data.predict_root DIR (the files to label) or a test split."
                )
            self._check_channels(self.splits["predict"])
            self._check_readable("predict")
            return
        samples = self.labelled_samples
        for split in ("train", "val", "test"):
            self.splits[split] = [s for s in samples if s.split == split]
        self._check_channels(samples)
        if stage == "fit":
            self._drop_long_training_samples()
            if not self.splits["train"]:
                raise UserError(f"{self.root}: the train split is empty.")
            train = self._dataset("train")
            lengths: list[int] = []
            first: list[np.ndarray] = []

            def sequences() -> Iterable[np.ndarray]:  # one pass: statistics and lengths
                for i in range(len(train)):
                    x = train[i]["x"].numpy()
                    lengths.append(len(x))
                    if len(first) < 64:
                        first.append(x)
                    yield x

            self.channel_mean, self.channel_std = channel_stats(sequences())
            self.longest_train_length = max(lengths)
            self._note_channels_first(first)
        for split in {"fit": ("val",), "validate": ("val",), "test": ("test",)}.get(stage, ()):
            self._check_readable(split)

    def _note_channels_first(self, sequences: list[np.ndarray]) -> None:
        """Warn when sequence files made elsewhere hold fewer rows than columns and look like
        channels x time (`looks_channels_first`)."""
        rows, columns = int(np.median([len(x) for x in sequences])), sequences[0].shape[1]
        if rows < columns and self.feature_settings is None and looks_channels_first(sequences):
            rank_zero_warn(
                f"{self.root}: the training files hold about {rows} rows of {columns} columns, "
                f"read as {rows} time steps of {columns} channels, but they change far more "
                f"smoothly along a row than down a column; {TRANSPOSE_FIX}"
            )

    def _check_readable(self, split: str) -> None:
        """Read every file of `split` once, so that a bad one (NaN, unreadable) stops the run
        here, named, rather than inside a DataLoader worker mid-epoch; note each sample's
        length for `length_batches`."""
        samples = self.splits.get(split, [])
        steps = {path: len(load_sequence(path)) for path in dict.fromkeys(s.path for s in samples)}
        self._lengths[split] = [len(range(steps[s.path])[s.window]) for s in samples]

    def train_draw(self, count: int, seed: int = 0) -> Batch:
        """A padded batch of `count` training samples drawn at random (all if fewer)."""
        train = self._dataset("train")
        generator = torch.Generator().manual_seed(seed)
        picks = torch.randperm(len(train), generator=generator)[:count].sort().values
        return pad_collate([train[int(i)] for i in picks])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.splits.get("val") and self.trainer and self.trainer.state.fn == "fit":
            return []  # fit without validation (see val_fraction)
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    @property
    def _on_cuda(self) -> bool:
        strategy = getattr(self.trainer, "strategy", None)
        return strategy is not None and strategy.root_device.type == "cuda"

    @property
    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    @property
    def batch_size(self) -> int:
        """The global batch: `batch_size`, or when None one that suits the train split's size."""
        if self.hparams.batch_size is not None:
            return self.hparams.batch_size
        train = len(self.splits.get("train") or []) if self.root else 0
        size = 32 if not train else min(32, max(4, 1 << max(0, (train // 8).bit_length() - 1)))
        world = self._world_size
        return max(world, size - size % world)

    @property
    def device_batch_size(self) -> int:
        """Samples per batch in each process: the global `batch_size` over the processes."""
        world = self._world_size
        if self.batch_size % world:
            size = self.batch_size
            lower, upper = size - size % world, size + world - size % world
            raise UserError(
                f"data.batch_size {size} is the global batch and must divide evenly over "
                f"{world} processes: use {lower or upper} or {upper}."
            )
        return self.batch_size // world

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        samples = self.splits.get(split)
        if not samples:
            raise UserError(
                f"the {split} split of {self.root} is empty; give {split}/ folders or a "
                f"non-zero data.{split}_fraction."
            )
        dataset, sampler, world = self._dataset(split), None, self._world_size
        if split != "train" and world > 1:
            # Lightning's default sampler repeats samples to even out the processes, which
            # would count them twice in the metrics: evaluate each sample exactly once.
            if len(dataset) < world:
                raise UserError(
                    f"the {split} split has {len(dataset)} samples for {world} processes; "
                    "use fewer devices or a larger split."
                )
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=world, rank=self.trainer.global_rank, shuffle=False
            )
        workers = {
            "num_workers": self.hparams.num_workers,
            "collate_fn": pad_collate,
            "persistent_workers": self.hparams.num_workers > 0,
            "pin_memory": self._on_cuda,  # page-locked batches: copies to the GPU overlap its work
        }
        if split != "train" and world == 1 and split in self._lengths:
            batches = LengthBatchSampler(
                SequentialSampler(dataset), self.device_batch_size, lengths=self._lengths[split]
            )
            return DataLoader(dataset, batch_sampler=batches, **workers)
        return DataLoader(
            dataset, batch_size=self.device_batch_size, shuffle=shuffle, sampler=sampler, **workers
        )

    def _dataset(self, split: str) -> SequenceDataset:
        labelled = split != "predict" or self.predict_root is None
        return SequenceDataset(
            self.splits[split],
            self.class_names if self.root else [],
            self.step_labels if self.per_step and labelled else None,
        )

    def _check_channels(self, samples: list[Sample]) -> None:
        """One channel count for every sample and, for files that name their channels (CSV,
        EDF), one list of names (the same names in another order would mix channels), unless
        the chain reads channels by name; `columns` becomes those names."""
        expected_path = samples[0].path
        rows, expected = sequence_shape(expected_path)
        for s in samples[1:]:
            steps, channels = sequence_shape(s.path)
            if channels != expected:
                note = row_vector_note(s.path) or row_vector_note(expected_path)
                if not note and steps == rows:
                    note = f"Both hold {rows} rows: {TRANSPOSE_FIX}"
                raise UserError(
                    f"{s.path}: has {channels} channel{'s' * (channels != 1)} but {expected_path} "
                    f"has {expected}; every sample needs the same channel count. "
                    + (note or "Re-create or remove the odd file.")
                )
        self.columns = same_columns(
            (s.source or s.path for s in samples), self.signal.channels if self.signal else None
        )

    def _drop_long_training_samples(self) -> None:
        limit = self.hparams.max_train_length
        if limit is None:
            return
        train = self.splits["train"]
        kept = [s for s in train if sequence_shape(s.path)[0] <= limit]
        if len(kept) < len(train):
            rank_zero_info(
                f"data: dropped {len(train) - len(kept)} training sequences longer than {limit}"
            )
        self.splits["train"] = kept
