"""Run outputs people read: metrics.json and predictions.csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.data.discovery import Sample
from pipeline.data.sequence_files import sequence_shape


def write_metrics(run_dir: str | Path, results: dict, num_samples: int) -> Path:
    """Write test metrics (accuracy, macro-F1, per-class precision/recall, confusion matrix)."""
    path = Path(run_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "num_samples": num_samples}, indent=2) + "\n")
    return path


def write_predictions(
    path: str | Path, samples: Sequence[Sample], probs: torch.Tensor, class_names: Sequence[str]
) -> Path:
    """One row per sample: path, true label (if known), predicted label, a probability per class.

    Windows of long recordings also get their first and last step's times (``start_s, end_s``).
    """
    windows = any(s.seconds is not None for s in samples)
    rows = []
    for sample, p in zip(samples, probs.tolist(), strict=True):
        times = [f"{t:.6g}" for t in sample.seconds or ("", "")] if windows else []
        rows.append([_source(sample), *times, sample.label or "", p])
    return _write(path, ["path", *(["start_s", "end_s"] if windows else []), "label"], rows,
                  class_names)  # fmt: skip


def write_step_predictions(
    path: str | Path,
    samples: Sequence[Sample],
    probs: Sequence[torch.Tensor],
    class_names: Sequence[str],
    times: Sequence[np.ndarray],
    step_labels: dict[Path, np.ndarray],
) -> Path:
    """One row per time step of each sample (`probs[i]`: `[T_i, K]`, `times[i]`: `[T_i]`
    seconds, from `step_times`), with its true label where known."""
    rows = []
    for sample, p, t_i in zip(samples, probs, times, strict=True):
        labels = step_labels.get(sample.path)
        labels = labels[sample.window] if labels is not None else np.full(len(p), -1)
        for t, k, row in zip(t_i.tolist(), labels.tolist(), p.tolist(), strict=True):
            rows.append([_source(sample), f"{t:.6g}", class_names[k] if k >= 0 else "", row])
    return _write(path, ["path", "time_s", "label"], rows, class_names)


def _source(sample: Sample) -> str:
    return str(sample.source or sample.path)


def step_times(sample: Sample) -> np.ndarray:
    """Seconds of each step of `sample` (its window's): from the features' ``times`` when they
    carry them (preprocessed signals), else step indices."""
    if sample.path.suffix == ".npz":
        with np.load(sample.path, allow_pickle=False) as npz:
            if "times" in npz.files:
                return npz["times"][sample.window]
    return np.arange(sequence_shape(sample.path)[0], dtype=np.float64)[sample.window]


def _write(path: str | Path, columns: list[str], rows: list[list], class_names) -> Path:
    """Write `columns`, ``predicted`` and a probability per class; each row ends in its probs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*columns, "predicted", *(f"prob_{c}" for c in class_names)])
        for *fields, p in rows:
            best = max(range(len(p)), key=p.__getitem__)
            writer.writerow([*fields, class_names[best], *(f"{v:.6f}" for v in p)])
    return path
