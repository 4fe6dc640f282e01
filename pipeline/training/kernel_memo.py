"""The kernel features' counts of every training and validation sample, kept on the host.

Kernel features are fixed once fitted, and on long sequences they cost more than the rest of a
training step, so `fit` computes each sample's once and keeps it. What is kept is the integer
counts (`DilatedKernelFeatures.positive_counts`), 2 bytes a feature, so the features a model trains on
are bitwise those it is applied to. A split whose counts fit within `RAM_BUDGET` bytes stays in
memory; a larger one goes to an unlinked temporary file beside the run (read back with `pread`,
through the page cache), so a process's memory does not grow with the data set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

RAM_BUDGET = 256 * 2**20  # bytes of counts per split held in memory; larger splits go to disk
MAX_COUNT = np.iinfo(np.int16).max  # counts of longer samples are computed at every step


class _SplitCounts:
    """`[samples, features]` int16 counts of one split, in memory or in a file, and which rows
    are filled."""

    def __init__(self, samples: int, features: int, folder: Path | None) -> None:
        self.features = features
        self.filled = np.zeros(samples, dtype=bool)
        self.file = None
        self.rows: np.ndarray | None = None
        if samples * features * 2 <= RAM_BUDGET:
            self.rows = np.zeros((samples, features), dtype=np.int16)
        else:
            # closed by `close`, and unlinked from the start
            self.file = tempfile.TemporaryFile(dir=folder, prefix="kernel-counts-")  # noqa: SIM115

    @property
    def row_bytes(self) -> int:
        return self.features * 2

    def read(self, indices: list[int]) -> np.ndarray:
        """`[len(indices), features]` int16 counts of filled rows."""
        if self.rows is not None:
            return self.rows[indices]
        fd = self.file.fileno()
        return np.stack([
            np.frombuffer(os.pread(fd, self.row_bytes, i * self.row_bytes), dtype=np.int16)
            for i in indices
        ])  # fmt: skip

    def write(self, indices: list[int], counts: np.ndarray) -> None:
        if self.rows is not None:
            self.rows[indices] = counts
        else:
            fd = self.file.fileno()
            for i, row in zip(indices, counts, strict=True):
                os.pwrite(fd, np.ascontiguousarray(row).tobytes(), i * self.row_bytes)
        self.filled[indices] = True

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class KernelCountMemo:
    """Kernel counts by split and sample index; `lookup` on the host before a batch goes to
    the device, `store` once the device has computed the rows `lookup` did not have."""

    def __init__(self, features: int, folder: str | Path | None = None) -> None:
        self.features = features
        self.folder = Path(folder) if folder is not None else None
        self._splits: dict[str, _SplitCounts] = {}

    def lookup(self, split: str, samples: int, indices: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The kept counts `[B, features]` (int16; zeros where none is kept) of the samples
        `indices` (CPU) of `split` (of `samples` samples), and the rows of the batch to compute."""
        if split not in self._splits:
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
            self._splits[split] = _SplitCounts(samples, self.features, self.folder)
        store = self._splits[split]
        indices = indices.tolist()
        counts = np.zeros((len(indices), self.features), dtype=np.int16)
        kept = [row for row, i in enumerate(indices) if store.filled[i]]
        if kept:
            counts[kept] = store.read([indices[row] for row in kept])
        missing = [row for row, i in enumerate(indices) if not store.filled[i]]
        return torch.from_numpy(counts), missing

    def store(self, split: str, indices: list[int], counts: torch.Tensor) -> None:
        """Keep `counts [N, features]` (int64, on any device) of samples `indices` of `split`;
        rows with a count beyond int16 are left to be computed again."""
        counts = counts.cpu().numpy()
        fits = counts.max(1) <= MAX_COUNT
        self._splits[split].write(
            [i for i, ok in zip(indices, fits, strict=True) if ok], counts[fits].astype(np.int16)
        )

    def clear(self) -> None:
        for store in self._splits.values():
            store.close()
        self._splits.clear()
