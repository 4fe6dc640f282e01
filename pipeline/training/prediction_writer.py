"""Lightning callback that writes `predictions.csv`: every sample exactly once, in input order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from pipeline.core.distributed import merge_to_all
from pipeline.training.reports import write_indexed_predictions


class PredictionWriter(BasePredictionWriter):
    """Gathers `{"index", "probs"}` from `predict_step` on all ranks; rank 0 writes the CSV.

    Samples a distributed sampler duplicated to even out the ranks are written once.
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        mine = {}
        for batch in predictions:
            mine.update(
                zip(batch["index"].tolist(), pl_module.per_sample_probs(batch), strict=True)
            )
        rows = merge_to_all(mine)
        path = Path(trainer.log_dir) / self.filename  # every process: broadcast from rank 0
        if not trainer.is_global_zero:
            return
        samples = trainer.datamodule.splits["predict"]
        if len(rows) != len(samples):
            raise RuntimeError(f"predicted {len(rows)} of {len(samples)} samples")
        labels = trainer.datamodule.step_labels if pl_module.per_step else None
        self.path = write_indexed_predictions(
            path, samples, rows, class_names=pl_module.class_names, step_labels=labels
        )
