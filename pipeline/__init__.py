"""Sequence classification pipeline: sample discovery, datasets, LSTM training, CLI, reports."""

from pipeline.data.datamodule import SequenceDataModule
from pipeline.data.sequence_files import SequenceDataError, load_sequence, save_sequence
from pipeline.lit_module import SequenceClassifier
from pipeline.models.sequence_net import SequenceNet

__all__ = [
    "SequenceClassifier",
    "SequenceDataError",
    "SequenceDataModule",
    "SequenceNet",
    "load_sequence",
    "save_sequence",
]
