"""Lightning callback that writes `predictions.csv`: every sample exactly once, in input order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from pipeline.reports import write_predictions


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
        rows = {}
        for batch in predictions:
            for i, p in zip(batch["index"].tolist(), batch["probs"].cpu(), strict=True):
                rows[i] = p
        if trainer.world_size > 1:
            gathered: list[dict] = [{} for _ in range(trainer.world_size)]
            torch.distributed.all_gather_object(gathered, rows)
            rows = {i: p for part in gathered for i, p in part.items()}
        if not trainer.is_global_zero:
            return
        samples = trainer.datamodule.splits["predict"]
        if len(rows) != len(samples):
            raise RuntimeError(f"predicted {len(rows)} of {len(samples)} samples")
        order = sorted(rows)
        probs = torch.stack([rows[i] for i in order])
        self.path = write_predictions(
            Path(trainer.log_dir) / self.filename,
            [samples[i] for i in order],
            probs,
            pl_module.class_names,
        )
