"""A training budget in optimizer steps: the epochs of `fit` follow from the train split's size."""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from pipeline.core.errors import UserError


class TrainingBudget(Callback):
    """Train for about `steps` optimizer steps, whatever the size of the train split.

    A fixed number of epochs gives a 40-sample set a few dozen steps and a 100,000-sample set
    hundreds of thousands; a budget in steps gives both enough. At `fit`, the epochs become
    `steps` over the batches per epoch (within `min_epochs` and `max_epochs`), early stopping's
    patience becomes `patience` of those epochs (`train_loss_patience` without a val split; never
    less than configured), and a summary of the plan is printed. An explicit
    ``trainer.max_epochs`` or ``trainer.max_steps`` turns it off.
    Without a val split, checkpoints and early stopping follow the training loss instead; so
    they do in a cross-validation fold, whose val split is the held-out fold it is scored on.

    Args:
        steps: optimizer steps to train for; None keeps the trainer's epochs.
        min_epochs: fewest epochs, for large train splits.
        max_epochs: most epochs, for tiny train splits.
        patience: early stopping patience as a fraction of the epochs, on the val loss.
        train_loss_patience: the same without a val split, on the training loss, which sits at
            label smoothing's floor long before the kernel head has learnt (Coffee lost 1 point
            over 10 resamples at 0.1).
    """

    def __init__(
        self,
        steps: int | None = 1000,
        min_epochs: int = 10,
        max_epochs: int = 2000,
        patience: float = 0.1,
        train_loss_patience: float = 0.25,
    ) -> None:
        self.steps = steps
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.patience = patience
        self.train_loss_patience = train_loss_patience
        self._plan: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        data = trainer.datamodule
        if stage != "fit" or data is None or not hasattr(data, "splits"):
            return
        batches = math.ceil(len(data.splits["train"]) / data.device_batch_size)
        plan = (
            f"fit: {len(data.splits['train'])} training samples of {data.input_size} "
            f"channel{'s' if data.input_size != 1 else ''}, batch {data.batch_size}"
        )
        patience = self.patience
        fold = getattr(data.hparams, "fold", None)
        if not data.splits.get("val") or fold is not None:
            patience = self.train_loss_patience
            for callback in (trainer.checkpoint_callback, *trainer.early_stopping_callbacks):
                if callback is not None and callback.monitor == "val_loss":
                    callback.monitor = "train_loss_epoch"
                elif (
                    callback is not None and fold is not None and callback.monitor.startswith("val")
                ):
                    raise UserError(
                        f"{callback.monitor} would choose the checkpoint on the held-out fold it "
                        "is scored on, which flatters the score; cross-validation chooses it "
                        "by the training loss. Drop the monitor option for cv."
                    )
            plan += (
                ", no val split (the training loss picks the checkpoint)"
                if fold is None
                else f", fold {fold} of {data.hparams.folds} held out to score: the training "
                "loss picks the checkpoint"
            )
        if self.steps is not None:
            epochs = min(self.max_epochs, max(self.min_epochs, math.ceil(self.steps / batches)))
            trainer.fit_loop.max_epochs = epochs
            plan += f", {self.steps}-step budget: {epochs} epochs of {batches} steps"
            for stopper in trainer.early_stopping_callbacks:
                stopper.patience = max(stopper.patience, math.ceil(patience * epochs))
                plan += f" (early stopping after {stopper.patience} epochs without progress)"
        self._plan = plan

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the plan, now that the model (and its stride) is built."""
        plan, net = self._plan, getattr(pl_module, "net", None)
        if plan is None:
            return
        if net is not None and net.stride > 1:
            longest = trainer.datamodule.longest_train_length
            plan += (
                f"; the recurrent layers run {-(-longest // net.stride)} steps for the longest "
                f"sequence's {longest} (stride {net.stride})"
            )
        if net is not None and net.kernel_head is not None:
            head, alone = net.kernel_head, net.encoder is None
            kinds = f"{head.num_features} fixed kernel features"
            if head.hydra is not None:
                kinds += f" ({head.num_features - head.hydra.num_features} dilated-kernel, "
                kinds += f"{head.hydra.num_features} Hydra)"
            plan += f"; {kinds} {'alone' if alone else 'beside them'}"
        streams = getattr(pl_module, "streams", [])
        if streams:
            hp = pl_module.hparams
            widths = " + ".join(f"{name} {width}" for name, width in streams)
            plan += f"; {hp.fusion} fusion of {widths} channels, stream dropout {hp.stream_dropout}"
        rank_zero_info(plan)
