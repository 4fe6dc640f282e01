"""LightningModule that trains a `SequenceNet`: loss, torchmetrics, optimizer, normalization."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from pipeline.core.distributed import merge_to_all
from pipeline.core.errors import UserError, check_ranges
from pipeline.core.progress import progress_bar
from pipeline.data.batching import Batch
from pipeline.models.config import NetConfig, legacy_options, net_config
from pipeline.models.sequence_net import SequenceNet
from pipeline.prepare.kinds import feature_kind
from pipeline.training.datamodule import SequenceDataModule
from pipeline.training.kernel_memo import KernelFeatureMemo
from pipeline.training.metrics import (
    LabelledAccuracy,
    LabelledMacroF1,
    WeightedMean,
    test_metrics,
    test_results,
)

# What checkpoints written before an option existed were trained with: absent keys get these.
LEGACY_HPARAMS = {**legacy_options(), "lr_schedule": "constant"}
KERNEL_FIT_SAMPLES = 256  # training samples the kernel features' biases and scaling come from
BAR_FROM_VALUES = 2**18  # samples x steps from which fitting them shows a bar (a second or more)


def with_legacy_defaults(hparams: dict) -> dict:
    """A checkpoint's hyperparameters, with the options it predates set as it was trained."""
    return {**LEGACY_HPARAMS, **hparams}


def auto_stride(longest: int, max_recurrent_steps: int) -> int:
    """Input steps per recurrent step so that `longest` runs at most `max_recurrent_steps`."""
    return max(1, -(-longest // max_recurrent_steps))


IMBALANCED = 4  # the largest class this many times the smallest: `fit` names the option


def _note_imbalance(class_names: list[str], counts) -> None:
    """Say so when the training classes are far apart in size, and what weighs them equally."""
    smallest, largest = int(counts.argmin()), int(counts.argmax())
    if counts[largest] >= IMBALANCED * max(int(counts[smallest]), 1):
        rank_zero_info(
            f"fit: the classes are imbalanced ({class_names[largest]} {counts[largest]}, "
            f"{class_names[smallest]} {counts[smallest]} in train): accuracy favours the large "
            "ones, macro_f1 weighs each class alike; --model.class_weights balanced trains that way"
        )


class SequenceClassifier(pl.LightningModule):
    """Sequence-to-label classifier over `[T, D]` sequences.

    Class names, input size, the train split's per-channel normalization and the settings that
    made the features (`feature_settings.json` of the data folder) are taken from the data at
    `fit` and stored in the checkpoint, so `test`/`predict`/`classify` use exactly those.

    Args:
        kernel_lr: peak learning rate of the kernel features' head (Adam's steps on thousands
            of features).
        max_length: the longest training sequence; set from the data at fit.
        lr: peak learning rate.
        lr_schedule: ``onecycle`` (linear warm-up over the first tenth of the steps, then cosine
            decay to zero) or ``constant``. The learning rate is logged every step.
        weight_decay: AdamW weight decay (0 gives plain Adam).
        label_smoothing: cross-entropy label smoothing.
        class_weights: ``none``, or ``balanced``: each class's loss is weighted by the training
            samples (steps, per step) over the class count times its own, as scikit-learn's
            ``class_weight="balanced"``, so that rare classes count as much as common ones.
        class_names: set from the data at fit; stored in checkpoints.
        input_size: set from the data at fit; stored in checkpoints.
        feature_settings: set from the data at fit; stored in checkpoints.
        columns: the channel names of the training files (a CSV header's, an EDF file's
            labels, or those the signal chain reads), set from the data at fit (None when the
            files name none); files to classify need the same.
        **net: the network's options, `NetConfig`'s fields (`--model.hidden_size`, ...).
    """

    def __init__(
        self,
        *,
        kernel_lr: float = 1e-4,
        max_length: int | None = None,
        lr: float = 1e-2,
        lr_schedule: Literal["onecycle", "constant"] = "onecycle",
        weight_decay: float = 1e-2,
        label_smoothing: float = 0.1,
        class_weights: Literal["none", "balanced"] = "none",
        class_names: list[str] | None = None,
        input_size: int | None = None,
        feature_settings: dict | None = None,
        columns: list[str] | None = None,
        **net,
    ) -> None:
        config = NetConfig(**net)  # the options given, checked now, and the others' defaults
        super().__init__()
        self.save_hyperparameters()
        check_ranges("model", self.hparams, {
            "lr": "> 0", "kernel_lr": "> 0", "weight_decay": ">= 0", "label_smoothing": "[0, 1)",
            "max_length": ">= 1",
        })  # fmt: skip
        self.hparams.update(asdict(config))
        self.net: SequenceNet | None = None
        self.test_results: dict | None = None
        self.test_probs: dict[int, torch.Tensor] = {}  # test sample index -> probabilities
        self.fit_log_dir: str | None = None  # the training run's logs, kept in checkpoints
        self.fit_data_root: str | None = None  # the training data, as an absolute path, too
        self._kernel_memo: KernelFeatureMemo | None = None  # while fitting
        # sample indices and pooled kernel outputs of the samples the features were fitted to
        self._fitted_rows: tuple[list[int], torch.Tensor] | None = None
        self._resumed_schedule_steps: int | None = None  # the schedule's length in a checkpoint
        if class_names is not None and input_size is not None:
            self._build(class_names, input_size)

    def _build(self, class_names: list[str], input_size: int, longest: int | None = None) -> None:
        """Build the network; `longest` (training steps) resolves stride None."""
        hp = self.hparams
        hp.class_names, hp.input_size = list(class_names), int(input_size)
        if hp.stride is None:
            auto = hp.frontend != "none" and hp.pooling != "none" and hp.max_recurrent_steps
            hp.stride = auto_stride(longest or 1, hp.max_recurrent_steps) if auto else 1
        if hp.max_length is None:
            hp.max_length = longest or 1
        if hp.pooling == "none":
            if not hp.recurrent:
                raise UserError("a label per step needs the recurrent network: drop "
                                "--model.recurrent false (kernel features describe a sequence)")  # fmt: skip
            hp.kernel_features = 0
        num_classes = len(class_names)
        self.net = SequenceNet(
            input_size, num_classes, net_config(hp), max_length=hp.max_length,
            streams=[width for _, width in self.streams] or None,
        )  # fmt: skip
        # padding and unlabelled steps of per-step targets are -1: left out of the loss
        # balanced class weights are set from the train split at fit, kept in checkpoints
        weight = torch.ones(num_classes) if hp.class_weights == "balanced" else None
        self.loss = nn.CrossEntropyLoss(
            weight=weight, label_smoothing=hp.label_smoothing, ignore_index=-1
        )
        # over the labelled samples (or steps) of an epoch, kept on the device and synced over
        # processes at its end: the same figures as one process gets, and no step waits for them
        self.train_acc = LabelledAccuracy(num_classes)
        self.val_acc = LabelledAccuracy(num_classes)
        self.val_f1 = LabelledMacroF1(num_classes)
        self.train_mean_loss = WeightedMean()
        self.val_mean_loss = WeightedMean()
        self.test_mean_loss = WeightedMean()
        # the first training step whose loss was not finite, and that loss (-1: none yet)
        self.register_buffer("_bad_step", torch.tensor(-1), persistent=False)
        self.register_buffer("_bad_loss", torch.tensor(0.0), persistent=False)
        self.test_metrics = test_metrics(num_classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names)

    @property
    def streams(self) -> list[tuple[str, int]]:
        """The named input streams side by side in the features, with their channels, as the
        network fuses them (their kind's `streams`); empty when it takes them as one."""
        if self.hparams.fusion == "none":
            return []
        settings = self.hparams.feature_settings
        return feature_kind(settings).streams(settings)

    @property
    def per_step(self) -> bool:
        """True when the model labels every time step (pooling ``none``)."""
        return self.hparams.pooling == "none"

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if not isinstance(datamodule, SequenceDataModule):
            return
        if self.net is None:
            if stage != "fit":
                raise UserError(
                    "no trained model given: pass --ckpt_path CHECKPOINT (a .ckpt file from fit)."
                )
            if datamodule.per_step:
                self.hparams.pooling = "none"
            self.hparams.feature_settings = datamodule.feature_settings
            self.hparams.columns = datamodule.columns
            self._build(
                datamodule.class_names, datamodule.input_size, datamodule.longest_train_length
            )
        if stage == "fit":
            self.hparams.feature_settings = datamodule.feature_settings
        self._check_data(datamodule, stage)
        if stage == "fit" and self.loss.weight is not None:
            counts = torch.from_numpy(datamodule.train_class_counts()).float()
            self.loss.weight.copy_(counts.sum() / (len(counts) * counts.clamp(min=1)))
            weights = zip(self.class_names, self.loss.weight.tolist(), strict=True)
            listed = ", ".join(f"{name} {weight:.3g}" for name, weight in weights)
            rank_zero_info(f"fit: balanced class weights: {listed}")
        elif stage == "fit":
            _note_imbalance(self.class_names, datamodule.train_class_counts())
        if stage == "fit" and datamodule.channel_mean is not None:
            self.net.channel_mean.copy_(datamodule.channel_mean)
            self.net.channel_std.copy_(datamodule.channel_std)
        if stage == "fit" and self.net.kernel_head is not None:
            # on the device the run trains on: a GPU fits long series in seconds, not minutes
            device = self.trainer.strategy.root_device
            draw = datamodule.train_draw(KERNEL_FIT_SAMPLES)
            samples, steps = draw["x"].shape[:2]
            passes = range(samples * self.net.kernel_head.fitting_passes)
            quick = samples * steps < BAR_FROM_VALUES or not self.trainer.is_global_zero
            with progress_bar(passes, "sample", "kernel features", disable=quick) as bar:
                pooled = self.net.to(device).fit_kernel_features(
                    draw["x"].to(device), draw["lengths"].to(device), bar.update
                )
            self._fitted_rows = (draw["index"].tolist(), pooled)  # the memo's first rows

    def _check_data(self, datamodule: SequenceDataModule, stage: str) -> None:
        predicting = stage == "predict"
        where = (
            datamodule.predict_root if predicting and datamodule.predict_root else datamodule.root
        )
        channels = datamodule.split_channels("predict") if predicting else datamodule.input_size
        if channels != self.hparams.input_size:
            raise UserError(
                f"{where}: samples have {channels} channels but the model was trained on "
                f"{self.hparams.input_size}. Use data prepared like the training data, or the "
                "checkpoint trained on this data."
            )
        trained_columns, columns = self.hparams.columns, datamodule.columns
        if trained_columns is not None and columns is not None and columns != trained_columns:
            raise UserError(
                f"{where}: the files have the channels {','.join(columns)} but the model was "
                f"trained on {','.join(trained_columns)}; a channel is known by its place. Write "
                "the channels in the training order, with its names."
            )
        settings = datamodule.settings_of(where)
        trained_on = self.hparams.feature_settings
        if (
            trained_on is not None
            and settings != trained_on
            and (settings is not None or feature_kind(trained_on).settings_must_match)
        ):
            raise UserError(
                f"{where}: features were made with {settings}, but the model was trained on "
                f"features made with {trained_on}. Prepare the data with the training settings "
                "(for signals: the same data.signal as the run's config.yaml), or give raw "
                "inputs to `seqclass classify`, which applies them."
            )
        if not predicting and datamodule.per_step != self.per_step:
            raise UserError(
                f"{where}: the model labels {'every step' if self.per_step else 'whole sequences'}"
                f" but the data is labelled {'per step' if datamodule.per_step else 'per sequence'}"
                "; set data.per_step as in training."
            )
        if not predicting and datamodule.class_names != self.class_names:
            if stage == "fit":  # resumed on other data
                raise UserError(
                    f"{where}: classes {datamodule.class_names} differ from those of the "
                    f"checkpoint {self.class_names}; resume on the data it was trained on."
                )
            datamodule.evaluate_with_classes(self.class_names)

    def on_fit_end(self) -> None:
        if self._kernel_memo is not None:
            self._kernel_memo.clear()
        self._kernel_memo = None

    def on_fit_start(self) -> None:
        log_dir = self.trainer.log_dir  # on every rank: the folder is broadcast from rank 0
        self.fit_log_dir = None if log_dir is None else str(Path(log_dir).resolve())
        self._bad_step.fill_(-1)
        datamodule = getattr(self.trainer, "datamodule", None)
        root = getattr(datamodule, "root", None)
        self.fit_data_root = None if root is None else str(Path(root).resolve())
        if self.net.kernel_head is not None and isinstance(datamodule, SequenceDataModule):
            sizes = {split: len(datamodule.splits.get(split) or []) for split in ("train", "val")}
            self._kernel_memo = KernelFeatureMemo(
                self.net.kernel_head.num_features, sizes, self.trainer.default_root_dir
            )
            # computed as the kernel features were fitted, by the kernels the model holds: not
            # so in a resumed fit (the checkpoint's), nor under DDP (rank 0's, broadcast)
            fitted_here = self.trainer.ckpt_path is None and self.trainer.world_size == 1
            if self._fitted_rows is not None and fitted_here:
                self._kernel_memo.store("train", *self._fitted_rows)
        self._fitted_rows = None

    def on_train_start(self) -> None:
        """Say so when a resumed fit's learning-rate schedule is not the checkpoint's length."""
        schedule, resumed = self.lr_schedulers(), self._resumed_schedule_steps
        if resumed is not None and schedule is not None and schedule.total_steps != resumed:
            rank_zero_info(
                f"fit: resumed at step {schedule.last_epoch} of {schedule.total_steps} (the "
                f"checkpoint's run was {resumed} steps): the one-cycle learning rate follows "
                f"the {schedule.total_steps}-step schedule from there."
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["fit_log_dir"] = self.fit_log_dir
        checkpoint["fit_data_root"] = self.fit_data_root

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.fit_log_dir = checkpoint.get("fit_log_dir")
        self.fit_data_root = checkpoint.get("fit_data_root")
        # A resumed fit may be longer than the one that wrote the checkpoint (more epochs, more
        # data): the one-cycle schedule keeps this run's length and goes on from the steps done.
        for state in checkpoint.get("lr_schedulers", []):
            self._resumed_schedule_steps = state.pop("total_steps", None)
            state.pop("_schedule_phases", None)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits `[B, K]` for raw (unnormalized) right-padded `x [B, T, D]`."""
        return self.net(x, lengths)

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """While fitting, the pooled kernel outputs the memo keeps for the batch go with it to
        the device, with the rows it lacks (`kernel_rows`) and their sample indices."""
        if self._kernel_memo is not None:
            split = "train" if self.trainer.training else "val"
            # page-locked on a GPU, as the loader's batches: the copy then waits for nothing
            pooled, rows = self._kernel_memo.lookup(
                split, batch["index"], pin=self.device.type == "cuda"
            )
            batch["kernel_pooled"], batch["kernel_rows"] = pooled, rows
            batch["kernel_indices"] = batch["index"][rows].tolist()
        return batch

    def scored(self, batch: Batch, split: str) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each head's logits `[N, K]` and the targets `[N]` of a `train` or `val` batch: per
        sample, or per step with target -1 at padding and unlabelled steps (the loss and the
        metrics leave them out, with no wait for the device)."""
        kernel_features = self._kept_kernel_features(batch, split)
        heads = self.net.head_logits(batch["x"], batch["lengths"], kernel_features=kernel_features)
        return [logits.flatten(0, -2) for logits in heads], batch["y"].flatten()

    def _kept_kernel_features(self, batch: Batch, split: str) -> torch.Tensor | None:
        """The batch's kernel features from the pooled outputs the memo keeps; the rows it lacks
        are computed here (once per sample) and kept. None when the batch brings none."""
        pooled = batch.get("kernel_pooled")
        if pooled is None:
            return None
        rows = batch["kernel_rows"]
        if rows:
            picked = torch.tensor(rows, device=pooled.device)
            lengths = batch["lengths"][picked]
            x = batch["x"][picked, : int(lengths.max())]
            fresh = self.net.kernel_head.pooled(self.net.normalize(x), lengths)
            self._kernel_memo.store(split, batch["kernel_indices"], fresh)
            pooled = pooled.index_copy(0, picked, fresh)
        return self.net.kernel_head.standardize(pooled)

    def labelled(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`logits` and targets `y` of a batch, flattened to the labelled steps when per step."""
        if self.per_step:
            keep = y >= 0
            return logits[keep], y[keep]
        return logits, y

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        heads, y = self.scored(batch, "train")
        logits = self.net.joined(heads)
        if self.net.heads == "ensemble":  # each head learns to classify alone
            loss = torch.stack([self.loss(head, y) for head in heads]).mean()
        else:
            loss = self.loss(logits, y)
        first = (self._bad_step < 0) & ~torch.isfinite(loss.detach())  # no wait for the device
        self._bad_step.copy_(torch.where(first, self.global_step, self._bad_step))
        self._bad_loss.copy_(torch.where(first, loss.detach().float(), self._bad_loss))
        self.train_acc.update(logits, y)
        self.train_mean_loss.update(loss.detach(), (y >= 0).sum())
        size = len(batch["x"])
        self.log("train_loss_step", loss, prog_bar=True, batch_size=size)  # this process's
        self.log(
            "train_loss_epoch",
            self.train_mean_loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
        )
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def on_train_batch_end(self, outputs, batch: Batch, batch_idx: int) -> None:
        """Stop on a non-finite loss, looked at every `log_every_n_steps` steps and at the
        epoch's end: before anything is validated or checkpointed."""
        every = max(1, self.trainer.log_every_n_steps)
        if (batch_idx + 1) % every == 0 or batch_idx + 1 == self.trainer.num_training_batches:
            self._stop_on_non_finite()

    def on_validation_start(self) -> None:
        if self.trainer.state.fn == "fit":
            self._stop_on_non_finite()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        heads, y = self.scored(batch, "val")
        logits = self.net.joined(heads)
        self.val_acc.update(logits, y)
        self.val_f1.update(logits, y)
        self.val_mean_loss.update(self.loss(logits, y), (y >= 0).sum())
        size = len(batch["x"])
        self.log("val_loss", self.val_mean_loss, prog_bar=True, batch_size=size)
        self.log("val_acc", self.val_acc, prog_bar=True, batch_size=size)
        self.log("val_macro_f1", self.val_f1, batch_size=size)

    def on_test_epoch_start(self) -> None:
        self._test_probs: dict[int, torch.Tensor] = {}

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        outputs = self(batch["x"], batch["lengths"])
        logits, y = self.labelled(outputs, batch["y"])
        self.test_metrics.update(logits, y)
        self.test_mean_loss.update(self.loss(logits, y), len(y))
        self.log("test_loss", self.test_mean_loss, batch_size=len(y))
        probs = {"probs": outputs.float().softmax(dim=-1), "lengths": batch["lengths"]}
        indices = batch["index"].tolist()
        self._test_probs.update(zip(indices, self.per_sample_probs(probs), strict=True))

    def on_test_epoch_end(self) -> None:
        self.test_probs = merge_to_all(self._test_probs)
        computed = {k: v.cpu() for k, v in self.test_metrics.compute().items()}
        self.test_metrics.reset()
        self.test_results = test_results(computed, self.class_names)
        # already over every process: syncing averages equal numbers, and keeps Lightning quiet
        self.log("test_acc", self.test_results["accuracy"], sync_dist=True)
        self.log("test_macro_f1", self.test_results["macro_f1"], sync_dist=True)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Class probabilities `[B, K]` (per step: `[B, T, K]`, with `lengths`) by sample index."""
        probs = self(batch["x"], batch["lengths"]).float().softmax(dim=-1)
        return {"index": batch["index"], "probs": probs, "lengths": batch["lengths"]}

    @staticmethod
    def per_sample_probs(output: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """`predict_step`'s probabilities one sample at a time: `[K]`, or `[T_i, K]` per step
        with the padding dropped."""
        probs, lengths = output["probs"].cpu(), output["lengths"].tolist()
        return [p[:n] if p.dim() == 2 else p for p, n in zip(probs, lengths, strict=True)]

    def _stop_on_non_finite(self) -> None:
        step = int(self._bad_step)
        if step < 0:
            return
        checkpoint = self.trainer.checkpoint_callback
        last = checkpoint and (checkpoint.last_model_path or checkpoint.best_model_path)
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        raise UserError(
            f"the training loss became {float(self._bad_loss)} at step {step} (seen at epoch "
            f"{self.current_epoch}, learning rate {lr:.3g}): lower --model.lr (now "
            f"{self.hparams.lr:g}) or check the data for extreme values. Last good checkpoint: "
            f"{last or 'none written yet'} (resume with --ckpt_path)."
        )

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        kernel_head = self.net.kernel_head
        kernel_params = set() if kernel_head is None else set(kernel_head.parameters())
        groups = [{"params": [p for p in self.parameters() if p not in kernel_params], "lr": hp.lr}]
        if kernel_head is not None:
            groups.append({"params": list(kernel_head.parameters()), "lr": hp.kernel_lr})
        groups = [g for g in groups if g["params"]]  # recurrent false: the kernel head's alone
        optimizer = torch.optim.AdamW(groups, weight_decay=hp.weight_decay)
        if hp.lr_schedule == "constant":
            return {"optimizer": optimizer}
        if hp.lr_schedule != "onecycle":
            raise ValueError(f"unknown lr_schedule {hp.lr_schedule!r}; choose onecycle or constant")
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise UserError(
                "lr_schedule onecycle needs a run of known length: set trainer.max_epochs or "
                "trainer.max_steps, or pass --model.lr_schedule constant."
            )
        # at least 20 steps: OneCycleLR cannot split fewer into warm-up and decay
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in groups],
            total_steps=max(20, int(total)),
            pct_start=0.1,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
