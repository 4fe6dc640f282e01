"""Run outputs people read: metrics.json and predictions.csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from pipeline.data.discovery import Sample


def write_metrics(run_dir: str | Path, results: dict, num_samples: int) -> Path:
    """Write test metrics (accuracy, macro-F1, per-class precision/recall, confusion matrix)."""
    path = Path(run_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "num_samples": num_samples}, indent=2) + "\n")
    return path


def write_predictions(
    path: str | Path, samples: Sequence[Sample], probs: torch.Tensor, class_names: Sequence[str]
) -> Path:
    """One row per sample: path, true label (if known), predicted label, a probability per class."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    predicted = probs.argmax(dim=1).tolist()
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "predicted", *(f"prob_{c}" for c in class_names)])
        for sample, k, row in zip(samples, predicted, probs.tolist(), strict=True):
            label = sample.label if sample.label is not None else ""
            writer.writerow(
                [
                    str(sample.source or sample.path),
                    label,
                    class_names[k],
                    *(f"{p:.6f}" for p in row),
                ]
            )
    return path
