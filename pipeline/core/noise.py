"""Messages from dependencies that say nothing about the user's run, and how to hide them."""

from __future__ import annotations

import logging
import warnings

NOISY_WARNINGS = (
    ".*treespec.*",
    ".*smaller than the logging interval.*",
    # `test --ckpt_path` of a run without a val split: its callbacks watched the training loss
    "Be aware that when using `ckpt_path`",
    # the model's hook brings the kept kernel features along; the data module has none
    "You have overridden `on_before_batch_transfer`",
    # a run without a val split (said in fit's plan line), and a second run beside an earlier
    # one in the same folder (its checkpoints' -vN names are noted after fit)
    "Total length of `list` across ranks is zero",
    "Checkpoint directory .* exists and is not empty",
    # cv, tune and ArrayClassifier drive LightningCLI with options of their own
    "LightningCLI's args parameter is intended",
)
NOISY_LOGS = ("litlogger", "to estimate number of stepping batches")  # the schedule's length


def hide_noisy_warnings() -> None:
    """Ignore `NOISY_WARNINGS` (for the process, or inside `warnings.catch_warnings()`)."""
    for message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def hide_noisy_logs() -> None:
    """Leave Lightning's `NOISY_LOGS` lines out of the log, for the rest of the process."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not any(text in record.getMessage() for text in NOISY_LOGS)
    )
