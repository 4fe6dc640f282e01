"""How long work shows its progress: bars on a terminal, a few lines in a log.

Where the output goes to a file (SLURM, nohup, CI), every redraw of a bar would stay in it. There
an extraction prints its bar about every 5 % of its items, and training prints a line an epoch.
"""

from __future__ import annotations

import math
import sys
import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar
from tqdm import tqdm

STEPS_PER_REFRESH = 10  # a training bar's redraw reads the loss: it waits for the device


def progress_bar(items: list, unit: str, desc: str, *, disable: bool = False) -> tqdm:
    """A tqdm bar over `items` (on stderr): redrawn as usual on a terminal, about 20 times in
    all in a log file."""
    if sys.stderr.isatty():
        return tqdm(items, unit=unit, desc=desc, disable=disable)
    every = max(1, math.ceil(len(items) / 20))
    return tqdm(items, unit=unit, desc=desc, disable=disable, mininterval=0, miniters=every,
                maxinterval=math.inf)  # fmt: skip


def training_progress() -> ProgressBar:
    """Lightning's bar on a terminal (redrawn every few steps), `EpochLines` in a log file."""
    if sys.stdout.isatty():
        return TQDMProgressBar(refresh_rate=STEPS_PER_REFRESH)
    return EpochLines()


class EpochLines(ProgressBar):
    """One line per training epoch: its number, the epoch's metrics of the progress bar, its
    seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._started = time.perf_counter()

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = self.get_metrics(trainer, pl_module)
        shown = " ".join(
            f"{k}={v:.4g}"
            for k, v in metrics.items()
            if isinstance(v, float) and not k.endswith("_step")
        )
        total = f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else ""
        seconds = time.perf_counter() - self._started
        print(f"epoch {trainer.current_epoch + 1}{total}: {shown} ({seconds:.1f} s)", flush=True)
