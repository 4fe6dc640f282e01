"""The kernel features of every training and validation sample, kept on the host.

Kernel features are fixed once fitted, and on long sequences they cost more than the rest of a
training step, so `fit` computes each sample's once and keeps it. What is kept is the pooled
kernel outputs (`KernelHead.pooled`, float32), so the features a model trains on are those it
is applied to. A split whose rows fit within `RAM_BUDGET` bytes stays in memory; a larger one
goes to an unlinked temporary file beside the run (read back with `pread`, through the page
cache), so a process's memory does not grow with the data set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

RAM_BUDGET = 256 * 2**20  # bytes of features per split held in memory; larger splits go to disk
ROW_DTYPE = np.float32


class _SplitRows:
    """`[samples, features]` float32 rows of one split, in memory or in a file, and which rows
    are filled."""

    def __init__(self, samples: int, features: int, folder: Path | None) -> None:
        self.row_bytes = features * np.dtype(ROW_DTYPE).itemsize
        self.filled = np.zeros(samples, dtype=bool)
        self.file = None
        self.rows: np.ndarray | None = None
        if samples * self.row_bytes <= RAM_BUDGET:
            self.rows = np.zeros((samples, features), dtype=ROW_DTYPE)
        else:
            # closed by `close`, and unlinked from the start
            self.file = tempfile.TemporaryFile(dir=folder, prefix="kernel-features-")  # noqa: SIM115

    def read(self, indices: list[int]) -> np.ndarray:
        """`[len(indices), features]` rows, filled ones."""
        if self.rows is not None:
            return self.rows[indices]
        fd = self.file.fileno()
        return np.stack([
            np.frombuffer(os.pread(fd, self.row_bytes, i * self.row_bytes), dtype=ROW_DTYPE)
            for i in indices
        ])  # fmt: skip

    def write(self, indices: list[int], rows: np.ndarray) -> None:
        if self.rows is not None:
            self.rows[indices] = rows
        else:
            fd = self.file.fileno()
            for i, row in zip(indices, rows, strict=True):
                os.pwrite(fd, np.ascontiguousarray(row).tobytes(), i * self.row_bytes)
        self.filled[indices] = True

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class KernelFeatureMemo:
    """Pooled kernel outputs by split and sample index; `lookup` on the host before a batch
    goes to the device, `store` once the device has computed the rows `lookup` did not have."""

    def __init__(
        self, features: int, sizes: dict[str, int], folder: str | Path | None = None
    ) -> None:
        """`sizes`: the number of samples of each split to keep rows of."""
        self.features = features
        self.sizes = sizes
        self.folder = Path(folder) if folder is not None else None
        self._splits: dict[str, _SplitRows] = {}

    def lookup(
        self, split: str, indices: torch.Tensor, *, pin: bool = False
    ) -> tuple[torch.Tensor, list]:
        """The kept rows `[B, features]` (float32; zeros where none is kept) of the samples
        `indices` (CPU) of `split`, and the rows of the batch to compute. `pin` puts them in
        page-locked memory, which a GPU copies from without waiting."""
        store = self._split(split)
        indices = indices.tolist()
        rows = torch.zeros(len(indices), self.features, dtype=torch.float32, pin_memory=pin)
        kept = [row for row, i in enumerate(indices) if store.filled[i]]
        if kept:
            rows.numpy()[kept] = store.read([indices[row] for row in kept])
        missing = [row for row, i in enumerate(indices) if not store.filled[i]]
        return rows, missing

    def store(self, split: str, indices: list[int], rows: torch.Tensor) -> None:
        """Keep `rows [N, features]` (float32, on any device) of samples `indices` of `split`."""
        self._split(split).write(indices, rows.cpu().numpy().astype(ROW_DTYPE, copy=False))

    def _split(self, split: str) -> _SplitRows:
        if split not in self._splits:
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
            self._splits[split] = _SplitRows(self.sizes[split], self.features, self.folder)
        return self._splits[split]

    def clear(self) -> None:
        for store in self._splits.values():
            store.close()
        self._splits.clear()
