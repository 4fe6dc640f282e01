"""The metrics runs report: weighted means over an epoch while training, and the test metrics
of a trained model and a baseline alike."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics


class WeightedMean(torchmetrics.Metric):
    """The mean of values weighted by how many items each stands for, summed over processes:
    `update` never waits for the device (torchmetrics' `MeanMetric` waits to check for NaN,
    and drops the weights when that check is off)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: torch.Tensor | float = 1.0) -> None:
        """Add `value` (any shape) with `weight` (broadcast to it); a value of weight 0 (the
        loss of a batch with nothing labelled, NaN) adds nothing."""
        weight = torch.as_tensor(weight, device=value.device).expand_as(value).float()
        self.total += (value.float() * weight).where(weight > 0, 0.0).sum()
        self.weight += weight.sum()

    def compute(self) -> torch.Tensor:
        return self.total / self.weight


class _LabelledConfusion(torchmetrics.Metric):
    """Counts `[K, K]` of (target, predicted class) over the labelled items (target -1: none),
    summed over processes; `update` never waits for the device (torchmetrics' `bincount`,
    and selecting the labelled items, both do on a GPU)."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        # whole numbers: exact at any count (float32 would stop counting at 2^24)
        self.add_state(
            "counts", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count the items of `logits [N, K]` with their targets `y [N]`."""
        pairs = y.clamp_min(0) * self.num_classes + logits.argmax(-1)
        self.counts.view(-1).index_add_(0, pairs, (y >= 0).long())  # deterministic on CUDA too


class LabelledAccuracy(_LabelledConfusion):
    """The share of labelled items whose predicted class is their target."""

    def compute(self) -> torch.Tensor:
        return self.counts.trace().float() / self.counts.sum().clamp_min(1)


class LabelledMacroF1(_LabelledConfusion):
    """The mean F1 of the classes that occur among the targets or the predictions, as
    torchmetrics' macro-averaged `F1Score` gives it."""

    def compute(self) -> torch.Tensor:
        counts = self.counts.float()
        tp = counts.diagonal()
        wrong = counts.sum(0) + counts.sum(1) - 2 * tp  # false positives + negatives
        f1 = 2 * tp / (2 * tp + wrong).clamp_min(1)
        seen = (tp + wrong) > 0
        return (f1 * seen).sum() / seen.sum().clamp_min(1)


def test_metrics(num_classes: int) -> torchmetrics.MetricCollection:
    """The confusion matrix, from which `test_results` derives every score."""
    task = {"task": "multiclass", "num_classes": num_classes}
    return torchmetrics.MetricCollection({"confusion_matrix": torchmetrics.ConfusionMatrix(**task)})


def test_results(computed: dict[str, torch.Tensor], class_names: Sequence[str]) -> dict:
    """The scores of `test_metrics(...).compute()`'s confusion matrix as plain numbers:
    accuracy, macro-F1 and per-class ones by class name. A score whose denominator is 0 is
    None, not 0: the precision of a class nothing was predicted as, the recall of a class
    without test samples, the F1 of a class with neither (which the macro-F1 leaves out, as
    scikit-learn's does)."""
    names = list(class_names)
    confusion = computed["confusion_matrix"].long()
    hits, predicted, support = confusion.diagonal(), confusion.sum(0), confusion.sum(1)

    def by_class(numerator: torch.Tensor, denominator: torch.Tensor) -> dict:
        return {
            name: (n / d if d else None)
            for name, n, d in zip(names, numerator.tolist(), denominator.tolist(), strict=True)
        }

    f1 = by_class(2 * hits, predicted + support)
    defined = [score for score in f1.values() if score is not None]
    return {
        "accuracy": hits.sum().item() / max(1, confusion.sum().item()),
        "macro_f1": sum(defined) / max(1, len(defined)),
        "class_names": names,
        "precision": by_class(hits, predicted),
        "recall": by_class(hits, support),
        "f1": f1,
        "support": dict(zip(names, support.tolist(), strict=True)),
        "confusion_matrix": confusion.tolist(),
    }
