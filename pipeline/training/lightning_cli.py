"""LightningCLI of `seqclass`: fit, validate, test and predict, with run folders and result files.

It knows nothing of the other commands (`pipeline.cli` gives the help text that names them), so
commands that drive fit runs (`cv`, `tune`) can use `make_cli` too.
"""

from __future__ import annotations

import inspect
import re
import shutil
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from pytorch_lightning.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
)
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from feature_extractors.devices import bf16_emulated
from feature_extractors.signal import SignalPreprocessing
from pipeline.core.errors import UserError
from pipeline.core.plots import plot_training_curves
from pipeline.core.progress import training_progress
from pipeline.data.sequence_files import read_feature_settings
from pipeline.training.budget import TrainingBudget
from pipeline.training.datamodule import SPLIT_OPTIONS, SequenceDataModule
from pipeline.training.lit_module import LEGACY_HPARAMS, SequenceClassifier
from pipeline.training.prediction_writer import PredictionWriter
from pipeline.training.reports import write_indexed_predictions, write_metrics, write_report


def run_loggers(root: str | Path) -> list[Logger]:
    """CSV and TensorBoard loggers sharing one run folder, ``ROOT/version_N``."""
    csv_logger = CSVLogger(root, name="")
    return [csv_logger, TensorBoardLogger(root, name="", version=csv_logger.version)]


def _has_gpu() -> bool:
    """Whether Lightning's ``gpu`` accelerator finds a device: CUDA, or Apple's MPS."""
    return torch.cuda.is_available() or torch.backends.mps.is_available()


# a silent error of torch's recurrent layers on Apple's GPU (multi-layer LSTMs, batch-dependent)
MPS_LSTM_ISSUE = "https://github.com/pytorch/pytorch/issues/180744"


def _keep_recurrent_layers_off_mps(trainer) -> None:
    """`auto` trains on a CUDA GPU where torch finds one, else on the CPU, as `auto` picks the
    device of every other command: Lightning's `auto` would take Apple's GPU (mps), where
    torch's LSTM has given wrong outputs without an error. Asked for by name, mps is used, with
    a warning."""
    if torch.cuda.is_available() or not torch.backends.mps.is_available():
        return
    if trainer.accelerator == "auto":
        trainer.accelerator = "cpu"
        rank_zero_info(
            "Apple GPU (mps) found; training on the CPU, since torch's recurrent layers on mps "
            f"have given wrong outputs without an error ({MPS_LSTM_ISSUE}). "
            "--trainer.accelerator mps trains there anyway."
        )
    elif trainer.accelerator in ("mps", "gpu"):
        rank_zero_warn(
            "training on Apple's GPU (mps): torch's recurrent layers there have given wrong "
            f"outputs without an error ({MPS_LSTM_ISSUE}); compare a test run with "
            "--trainer.accelerator cpu before trusting it."
        )


def _note_versioned_names(checkpoint: ModelCheckpoint) -> None:
    """Say so when the checkpoint folder held an earlier run's files, so that this run's got
    Lightning's ``-vN`` names: RUN/checkpoints/best.ckpt is then still the earlier model."""
    paths = [Path(p) for p in (checkpoint.best_model_path, checkpoint.last_model_path) if p]
    versioned = [p.name for p in paths if re.search(r"-v\d+$", p.stem)]
    if versioned:
        print(
            f"note: {paths[0].parent} held an earlier run's checkpoints, so this run's are "
            f"{' and '.join(versioned)}: give those to test, predict or classify. "
            "--trainer.default_root_dir runs/NAME keeps runs apart."
        )


class SeqClassCLI(LightningCLI):
    """LightningCLI with checkpointing, early stopping, run folders and result files."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_loss",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val_loss", "early_stopping.patience": 10})
        parser.add_lightning_class_args(TrainingBudget, "budget")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.trainer.default_root_dir = config.trainer.default_root_dir or "runs"
        config.checkpoint.dirpath = str(self._checkpoint_dir(config))
        if config.trainer.max_epochs is not None or config.trainer.max_steps not in (None, -1):
            config.budget.steps = None  # the user's own epochs or steps win
        elif config.budget.steps is not None:  # the budget's plan line gives the epochs
            warnings.filterwarnings("ignore", message="`max_epochs` was not set. Setting it to")
        if self.subcommand != "fit":  # the checkpoint callback's state matters to fit alone
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
        _keep_recurrent_layers_off_mps(config.trainer)
        if config.trainer.accelerator in ("gpu", "cuda") and not _has_gpu():
            raise UserError(
                f"--trainer.accelerator {config.trainer.accelerator} (as configs/trainer/gpu.yaml "
                "and ddp.yaml set it): torch finds no GPU here. Run on a machine with a CUDA GPU, "
                "or pass --trainer.accelerator cpu."
            )
        bf16 = str(config.trainer.precision).startswith("bf16")
        slow = (
            bf16 and config.trainer.accelerator in ("gpu", "cuda", "auto") and bf16_emulated("cuda")
        )
        if slow:
            rank_zero_warn(f"{slow}; pass --trainer.precision 16-mixed.")
        if config.trainer.sync_batchnorm and config.trainer.accelerator == "cpu":
            raise UserError(
                "trainer.sync_batchnorm works on GPUs only (torch's SyncBatchNorm); on the CPU "
                "pass --trainer.sync_batchnorm false: each process then normalizes by its own "
                "share of the batch."
            )

    @staticmethod
    def _checkpoint_dir(config) -> Path:
        """``--checkpoint.dirpath``, by default beside the run folders (``runs/checkpoints``),
        so that `--ckpt_path last` finds the checkpoints."""
        root = config.trainer.default_root_dir or "runs"
        return Path(config.checkpoint.dirpath or Path(root) / "checkpoints")

    def _parse_ckpt_path(self) -> None:
        """Check the checkpoint file, then give the options it predates the values it was
        trained with. ``last`` is the newest ``last*.ckpt`` of the checkpoint folder, as
        Lightning finds it, so that a resumed fit also reads the data as the first part did."""
        subcommand = self.config.get("subcommand")
        ckpt_path = subcommand and self.config[subcommand].get("ckpt_path")
        if ckpt_path == "last":
            config = self.config[subcommand]
            last = self._checkpoint_dir(config).glob("last*.ckpt")
            found = sorted(last, key=lambda p: p.stat().st_mtime)
            if found:
                ckpt_path = config.ckpt_path = str(found[-1])
        if ckpt_path in (None, "best", "last", "hpc", "registry"):  # Lightning's own names
            super()._parse_ckpt_path()
            return
        if not Path(ckpt_path).is_file():
            raise UserError(
                f"--ckpt_path {ckpt_path}: no such file. Give a .ckpt file that `seqclass fit` "
                "wrote (RUN/checkpoints/best.ckpt or last.ckpt)."
            )
        try:
            checkpoint = torch.load(ckpt_path, weights_only=True, map_location="cpu")
            hparams = checkpoint.get("hyper_parameters", {})
        except Exception as err:  # torch.load raises a dozen types on a bad file
            raise UserError(
                f"--ckpt_path {ckpt_path}: not a readable checkpoint ({type(err).__name__}); it "
                "may be truncated or another kind of file. Give a .ckpt file from `seqclass fit`."
            ) from None
        super()._parse_ckpt_path()
        model = self.config[self.config.subcommand].model
        for key, value in LEGACY_HPARAMS.items():
            if hparams and key not in hparams:
                model[key] = value
        self._run_beside_the_fit(Path(ckpt_path))
        self._read_data_as_fit(checkpoint)

    def _run_beside_the_fit(self, ckpt_path: Path) -> None:
        """With no ``--trainer.default_root_dir``, a run from ``RUN/checkpoints/X.ckpt`` writes
        into RUN, beside the fit's own run folder (a resumed fit goes on in its folder)."""
        trainer = self.config[self.config.subcommand].trainer
        if trainer.default_root_dir is None and ckpt_path.parent.name == "checkpoints":
            trainer.default_root_dir = str(ckpt_path.parent.parent)

    def _read_data_as_fit(self, checkpoint: dict) -> None:
        """Split and read the data as the checkpoint's fit did: a split option left at its
        default takes the fit's value, and raw recordings go through the fit's signal chain.
        Otherwise the test split of the fit's data would hold samples the model trained on.
        With no ``--data.root`` (nor new files to predict on), the fit's data is read."""
        subcommand = self.config.subcommand
        data = self.config[subcommand].data
        predicting_new = subcommand == "predict" and data.predict_root is not None
        fit_options = checkpoint.get("datamodule_hyper_parameters") or {}
        defaults = inspect.signature(SequenceDataModule).parameters
        update = {}
        for name in SPLIT_OPTIONS:
            if name not in fit_options or data[name] == fit_options[name]:
                continue
            if data[name] == defaults[name].default:
                update[name] = fit_options[name]
            elif not predicting_new:  # the split is used
                rank_zero_warn(
                    f"{subcommand}: data.{name}={data[name]}, but the checkpoint's fit had "
                    f"{name}={fit_options[name]}: on the fit's data, this split may hold "
                    "samples the model trained on, and score too high."
                )
        if data.root is None and not predicting_new and fit_options.get("root") is not None:
            update["root"] = self._fit_root(fit_options["root"], checkpoint.get("fit_data_root"))
            if data.cache_dir is None and fit_options.get("cache_dir") is not None:
                update["cache_dir"] = fit_options["cache_dir"]
        taken = [f"{name}={value}" for name, value in update.items()]
        settings = checkpoint.get("hyper_parameters", {}).get("feature_settings") or {}
        where = data.predict_root if predicting_new else update.get("root", data.root)
        if (
            data.signal is None
            and settings.get("kind") == "signal"
            and where is not None
            and read_feature_settings(where) is None  # raw recordings, not prepared sequences
        ):
            update["signal"] = asdict(SignalPreprocessing.from_settings(settings))
            steps = " -> ".join(next(iter(step)) for step in update["signal"]["steps"])
            taken.append(f"the signal chain ({steps or 'no steps'})")
        if update:
            self.config = self.parser.parse_object({subcommand: {"data": update}}, self.config)
            rank_zero_info(
                f"{subcommand}: the data is split and read as the checkpoint's fit did: "
                + ", ".join(taken)
            )

    def _fit_root(self, root: str, absolute: str | None) -> str:
        """The checkpoint's fit's ``data.root`` for a run given none: as the fit was given it
        where that is found from here, else as the fit resolved it (from another folder); an
        error when neither is found (moved, or another machine's path)."""
        found = [path for path in (root, absolute) if path is not None and Path(path).exists()]
        if not found:
            raise UserError(
                f"{self.config.subcommand}: no --data.root given, and the checkpoint's fit read "
                f"{absolute or root}, which is not found from here: pass --data.root DIR."
            )
        return found[0]

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = run_loggers(trainer_config["default_root_dir"])
            self._new_run_folder = True
        given = trainer_config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        if trainer_config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in given
        ):
            kwargs["callbacks"] = [*given, training_progress()]
        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ValueError) as err:  # Lightning's option checks
            raise UserError(f"trainer options: {err}") from None

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException as err:
            self._remove_empty_run_folder()
            # Lightning ends a run stopped by Ctrl+C (or SIGTERM) with exit(1), after teardown
            stopped = isinstance(err, SystemExit) and self.trainer.interrupted
            if subcommand == "fit" and stopped and self.trainer.is_global_zero:
                self._note_how_to_resume()
            raise

    def _note_how_to_resume(self) -> None:
        """After Ctrl+C in `fit`: where the last finished epoch is, and how to go on from it."""
        checkpoint = self.trainer.checkpoint_callback
        last = (
            Path(checkpoint.last_model_path) if checkpoint and checkpoint.last_model_path else None
        )
        if last is None or not last.is_file():
            print("fit interrupted before an epoch was saved: there is nothing to resume.")
            return
        print(
            f"fit interrupted: {last} holds the last saved epoch; the same command with "
            "--ckpt_path last resumes from it."
        )

    def _remove_empty_run_folder(self) -> None:
        """A run that failed before logging a metric leaves no ``version_N`` behind: the
        folder would hold only an empty event file, and the next try takes its number."""
        log_dir = self.trainer.log_dir
        if (
            getattr(self, "_new_run_folder", False)
            and self.trainer.is_global_zero
            and log_dir is not None
            and not (Path(log_dir) / "metrics.csv").exists()
        ):
            shutil.rmtree(log_dir, ignore_errors=True)

    def after_fit(self) -> None:
        checkpoint = self.trainer.checkpoint_callback
        log_dir = self.trainer.log_dir  # every process: the run folder is broadcast from rank 0
        if self.trainer.is_global_zero and log_dir is not None:
            log = Path(log_dir) / "metrics.csv"
            if log.is_file():
                plot_training_curves(log, Path(log_dir) / "training_curves.png")
        if self.trainer.is_global_zero and checkpoint is not None:
            score = checkpoint.best_model_score
            best = f"{score.item():.4f}" if score is not None else "n/a"
            epochs = self.trainer.current_epoch
            print(
                f"fit: {epochs} epoch{'s' * (epochs != 1)}, best {checkpoint.monitor}={best}\n"
                f"  best checkpoint: {checkpoint.best_model_path}\n"
                f"  last checkpoint: {checkpoint.last_model_path}\n"
                f"  logs and config: {log_dir}"
            )
            _note_versioned_names(checkpoint)
            if self.datamodule.splits.get("test"):  # the held-out split, read from the checkpoint
                print(f"  to test it: seqclass test --ckpt_path {checkpoint.best_model_path}")

    def after_validate(self) -> None:
        if self.trainer.is_global_zero:
            scores = {
                k: v.item() for k, v in self.trainer.callback_metrics.items() if k.startswith("val")
            }
            print("validate: " + " ".join(f"{k}={v:.4f}" for k, v in sorted(scores.items())))

    def after_test(self) -> None:
        model, data = self.model, self.datamodule
        results, log_dir = model.test_results, self.trainer.log_dir
        if not self.trainer.is_global_zero or results is None:
            return
        count = sum(map(sum, results["confusion_matrix"]))
        unit = "labelled time steps" if model.per_step else "samples"
        results = {
            **results,
            "unit": unit,
            "data": data.split_counts(),
            "data_root": str(data.root),
            "checkpoint": self.trainer.ckpt_path,
            "fit_log_dir": model.fit_log_dir,
            "feature_settings": model.hparams.feature_settings,
        }
        path = write_metrics(log_dir, results, count)
        write_indexed_predictions(
            Path(log_dir) / "test_predictions.csv", data.splits["test"], model.test_probs,
            class_names=model.class_names, step_labels=data.step_labels if model.per_step else None,
        )  # fmt: skip
        report = write_report(log_dir)
        print(
            f"test: accuracy={results['accuracy']:.4f} macro_f1={results['macro_f1']:.4f} "
            f"on {count} {unit} -> {path}\n  report with figures: {report}"
        )
        fitted_on = model.fit_data_root
        if data.test_split_drawn and fitted_on and Path(data.root).resolve() != Path(fitted_on):
            tested, found = len(data.splits["test"]), len(data.labelled_samples)
            print(
                f"  note: {data.root} is not the data the model was fitted on ({fitted_on}), "
                f"and the test split is drawn from it as fit draws one: {tested} of its {found} "
                f"samples (data.test_fraction {data.hparams.test_fraction}). To score them all, "
                f"put them in {Path(data.root) / 'test'}/<class>/."
            )

    def after_predict(self) -> None:
        writer = next(c for c in self.trainer.callbacks if isinstance(c, PredictionWriter))
        if self.trainer.is_global_zero and writer.path is not None:
            count = len(self.datamodule.splits["predict"])
            print(f"predict: {count} sample{'s' * (count != 1)} -> {writer.path}")


def make_cli(
    args: list[str] | None, run: bool = True, description: str = "Train and evaluate."
) -> SeqClassCLI:
    """The LightningCLI of `seqclass`; with `run=False`, `args` hold no subcommand and the
    model, data and trainer are only built (for commands that drive several runs)."""
    return SeqClassCLI(
        SequenceClassifier,
        SequenceDataModule,
        args=args,
        run=run,
        seed_everything_default=0,
        trainer_defaults={
            "max_epochs": None,  # set from the step budget (see TrainingBudget)
            "devices": 1,  # one GPU where there is one, as documented; every GPU: ddp.yaml
            "log_every_n_steps": 10,
            "gradient_clip_val": 1.0,
            "callbacks": [PredictionWriter(), LearningRateMonitor("step")],
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": description},
    )
