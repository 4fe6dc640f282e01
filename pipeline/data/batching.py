"""Samples as tensors, right-padded batches, and evaluation batches of similar lengths."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from pipeline.data.discovery import Sample
from pipeline.data.sequence_files import load_sequence

Batch = dict[str, torch.Tensor]


class SequenceDataset(Dataset):
    """Samples as `{"x": [T, D] float32, "y": class index (-1 if unknown), "index": i}`.

    A windowed sample is its slice of the file (files of windows are read once and kept). With
    `step_labels` (file -> class index per step), `y` is the window's labels `[T]` instead.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        class_names: Sequence[str],
        step_labels: dict[Path, np.ndarray] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.class_index = {name: i for i, name in enumerate(class_names)}
        self.step_labels = step_labels
        self._recordings: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        sample = self.samples[i]
        if sample.steps is None:
            x = load_sequence(sample.path)
        else:
            if sample.path not in self._recordings:
                self._recordings[sample.path] = load_sequence(sample.path)
            x = self._recordings[sample.path][sample.window]
        if self.step_labels is not None:
            y = torch.from_numpy(self.step_labels[sample.path][sample.window])
        else:
            y = self.class_index.get(sample.label, -1)
        return {"x": torch.from_numpy(x), "y": y, "index": i}


def pad_collate(items: list[dict]) -> Batch:
    """Right-pad `[T_i, D]` samples: `x [B, T_max, D]`, `lengths [B]`, `y [B]`, `index [B]`.

    Per-step labels are padded with -1 to `y [B, T_max]`.
    """
    lengths = torch.tensor([item["x"].shape[0] for item in items])
    x = torch.nn.utils.rnn.pad_sequence([item["x"] for item in items], batch_first=True)
    labels = [item["y"] for item in items]
    if isinstance(labels[0], torch.Tensor):
        y = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=-1)
    else:
        y = torch.tensor(labels)
    return {"x": x, "lengths": lengths, "y": y, "index": torch.tensor([i["index"] for i in items])}


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches of similar lengths: indices sorted by length, at most `batch_size` per
    batch and at most `batch_size` x the median length in padded steps, so a few very long
    sequences never pad a whole batch to their length (the longest may form batches alone)."""
    budget = batch_size * max(1, int(np.median(lengths)))
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        last = batches[-1] if batches else None
        if last is None or len(last) >= batch_size or (len(last) + 1) * lengths[i] > budget:
            batches.append([i])
        else:
            last.append(i)
    return batches


class LengthBatchSampler(BatchSampler):
    """`length_batches` over the indices of `sampler`, as a `BatchSampler` that Lightning can
    rebuild (it swaps the sampler, and keeps `lengths`, when it predicts)."""

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int,
        drop_last: bool = False,
        lengths: Sequence[int] = (),
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.lengths = list(lengths)

    def _batches(self) -> list[list[int]]:
        indices = list(self.sampler)
        batches = length_batches([self.lengths[i] for i in indices], self.batch_size)
        return [[indices[j] for j in batch] for batch in batches]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
