"""Sequence classification pipeline: sample discovery, datasets, LSTM training, CLI, reports.

The names below are imported on first use, so that commands that never train (`extract`,
`decompose`, `sample-data`, and the processes they spawn) start without loading Lightning.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "ArrayClassifier": "pipeline.apply.estimator",
    "Classification": "pipeline.apply.classify",
    "SequenceClassifier": "pipeline.training.lit_module",
    "SequenceDataError": "pipeline.core.errors",
    "SequenceDataModule": "pipeline.training.datamodule",
    "SequenceNet": "pipeline.models.sequence_net",
    "UserError": "pipeline.core.errors",
    "classify": "pipeline.apply.classify",
    "load_classifier": "pipeline.apply.classify",
    "load_sequence": "pipeline.data.sequence_files",
    "save_sequence": "pipeline.data.sequence_files",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
