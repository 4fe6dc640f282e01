"""The test metrics every run reports, for a trained model and a baseline alike."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics


def test_metrics(num_classes: int) -> torchmetrics.MetricCollection:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    task = {"task": "multiclass", "num_classes": num_classes}
    return torchmetrics.MetricCollection(
        {
            "accuracy": torchmetrics.Accuracy(**task),
            "macro_f1": torchmetrics.F1Score(**task, average="macro"),
            "precision": torchmetrics.Precision(**task, average="none"),
            "recall": torchmetrics.Recall(**task, average="none"),
            "f1": torchmetrics.F1Score(**task, average="none"),
            "confusion_matrix": torchmetrics.ConfusionMatrix(**task),
        }
    )


def test_results(computed: dict[str, torch.Tensor], class_names: Sequence[str]) -> dict:
    """`test_metrics(...).compute()` as plain numbers, per-class ones by class name."""
    names = list(class_names)

    def by_class(values: torch.Tensor) -> dict:
        return dict(zip(names, values.tolist(), strict=True))

    confusion = computed["confusion_matrix"]
    return {
        "accuracy": computed["accuracy"].item(),
        "macro_f1": computed["macro_f1"].item(),
        "class_names": names,
        "precision": by_class(computed["precision"]),
        "recall": by_class(computed["recall"]),
        "f1": by_class(computed["f1"]),
        "support": by_class(confusion.sum(1)),
        "confusion_matrix": confusion.tolist(),
    }
