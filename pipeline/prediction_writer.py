"""Lightning callback that writes `predictions.csv`: every sample exactly once, in input order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from pipeline.reports import step_times, write_predictions, write_step_predictions


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
            probs = pl_module.per_sample_probs(batch)
            rows.update(zip(batch["index"].tolist(), probs, strict=True))
        if trainer.world_size > 1:
            gathered: list[dict] = [{} for _ in range(trainer.world_size)]
            torch.distributed.all_gather_object(gathered, rows)
            rows = {i: p for part in gathered for i, p in part.items()}
        path = Path(trainer.log_dir) / self.filename  # every process: broadcast from rank 0
        if not trainer.is_global_zero:
            return
        samples = trainer.datamodule.splits["predict"]
        if len(rows) != len(samples):
            raise RuntimeError(f"predicted {len(rows)} of {len(samples)} samples")
        order = sorted(rows)
        ordered = [samples[i] for i in order]
        if pl_module.per_step:
            labels = trainer.datamodule.step_labels
            probs = [rows[i] for i in order]
            times = [step_times(s) for s in ordered]
            self.path = write_step_predictions(
                path, ordered, probs, pl_module.class_names, times, labels
            )
        else:
            probs = torch.stack([rows[i] for i in order])
            self.path = write_predictions(path, ordered, probs, pl_module.class_names)
