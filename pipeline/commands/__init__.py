"""The data commands of `seqclass` beside LightningCLI's fit/validate/test/predict.

Each command is a module here with a docstring (its `--help` description), `add_arguments(parser)`
and `run(ns)`; commands that drive `seqclass fit` runs also set `FIT_OPTIONS = True` and find the
fit options they were given in `ns.fit_args`. `COMMANDS` registers them by name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS: dict[str, str] = {  # name -> one line for `seqclass --help`
    "baseline": "fit and test MiniRocket or summary statistics + logistic regression on the splits",
    "classify": "classify raw videos, recordings or sequence files with a checkpoint",
    "cv": "k-fold cross-validation of a fit configuration",
    "decompose": "VMD/EMD modes of recordings: .npz, PNG and a stationarity line per channel",
    "explain": "which time steps made a checkpoint choose its class, per input",
    "export": "save a checkpoint as one TorchScript module (video: frames -> logits)",
    "extract": "encode videos (and recordings beside them) into [T, D] feature files",
    "report": "redraw a test run's figures and report.md",
    "sample-data": "write a built-in sample dataset",
    "tune": "hyper-parameter search with Optuna over fit options",
}


def load(name: str) -> ModuleType:
    """The module of command `name` (imported on first use: commands pull in heavy libraries)."""
    return importlib.import_module(f"pipeline.commands.{name.replace('-', '_')}")
