"""`seqclass tune`: Optuna search over `seqclass fit` options declared in a YAML search space.

Each trial trains a model from the base arguments plus its sampled options into
``OUT/trial_N``; its score is the best value of the checkpoint's monitor (``val_loss`` unless
``--checkpoint.monitor`` says otherwise) on the val split, which tune always has: where the fit
options would train without one (small data), it draws `VAL_FRACTION` of train. TPE proposes
the options, a median pruner stops trials whose validation score lags after each epoch, and the
study lives in ``OUT/study.db`` (SQLite), so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
import yaml
from pytorch_lightning.utilities import rank_zero_info

from pipeline.core.errors import UserError
from pipeline.core.plots import plot_trials
from pipeline.training.datamodule import VAL_FRACTION

KINDS = ("int", "float", "categorical")


def read_space(path: Path) -> dict[str, dict]:
    """The search space: ``option: {type: int|float|categorical, low, high, log, step, choices}``."""
    space = yaml.safe_load(path.read_text()) or {}
    for key, spec in space.items():
        if not isinstance(spec, dict) or spec.get("type") not in KINDS:
            raise UserError(
                f"{path}: {key} needs a mapping with type one of {KINDS}, e.g. "
                "`model.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}`."
            )
        needed = ("choices",) if spec["type"] == "categorical" else ("low", "high")
        missing = [k for k in needed if k not in spec]
        if missing:
            raise UserError(f"{path}: {key} ({spec['type']}) needs {', '.join(missing)}.")
    return space


def suggest(trial: optuna.Trial, key: str, spec: dict) -> Any:
    """Sample option `key` of the space for `trial`."""
    options = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, options["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(key, **options)
    return trial.suggest_float(key, **options)


class PruneOnValidation(pl.Callback):
    """Reports the monitored validation score to the trial after each epoch and stops the
    trial when the pruner says it lags behind earlier trials."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {self.monitor}={value:.4f}")


_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def tune(
    fit_args: list[str], space: dict[str, dict], *, trials: int, out: Path | None, seed: int = 0
):
    """Run the study until it holds `trials` finished trials; write ``best.yaml`` (the best
    trial's full config, ready for ``seqclass fit --config``), ``trials.csv`` and ``tune.png``
    into `out` (default: ``tune`` in the fit options' run folder)."""
    from pipeline.training.lightning_cli import make_cli

    base = make_cli([*fit_args, "--trainer.logger=false"], run=False)
    if base.trainer.world_size > 1:  # each rank would sample and judge trials of its own
        raise UserError(
            f"tune trains its trials one at a time in one process, but these options start "
            f"{base.trainer.world_size} (DDP); pass --trainer.devices 1 --trainer.num_nodes 1 "
            "(a trainer config of one device), then train the best config on every GPU."
        )
    out = out or Path(base.trainer.default_root_dir) / "tune"
    monitor, direction = _objective_of(base)
    _check_comparable(space, monitor)
    searched = {"fit_args": list(fit_args), "space": space}
    drawn = base.datamodule.hparams.val_fraction is None  # a val split even where fit skips it
    if drawn:
        fit_args = [*fit_args, f"--data.val_fraction={VAL_FRACTION}"]
        base = make_cli([*fit_args, "--trainer.logger=false"], run=False)
    base.datamodule.setup("fit")
    val = len(base.datamodule.splits.get("val", []))
    if not val:
        raise UserError(
            "tune scores each trial on the val split, and these options leave none; give val/ "
            f"folders, or a --data.val_fraction above 0 (the default for tune is {VAL_FRACTION})."
        )
    rank_zero_info(
        f"tune: each trial is scored by its best {monitor} on {val} val samples"
        + (f" (val_fraction {VAL_FRACTION}, kept in best.yaml)" if drawn else "")
    )
    out.mkdir(parents=True, exist_ok=True)
    study = _open_study(out, searched=searched, monitor=monitor, direction=direction, seed=seed)

    def objective(trial: optuna.Trial) -> float:
        chosen = [f"--{key}={suggest(trial, key, spec)}" for key, spec in space.items()]
        run_dir = out / f"trial_{trial.number}"
        cli = make_cli([*fit_args, *chosen, f"--trainer.default_root_dir={run_dir}"], run=False)
        cli.trainer.callbacks.append(PruneOnValidation(trial, monitor))
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        trial.set_user_attr("config", str(Path(cli.trainer.log_dir) / "config.yaml"))
        return float(cli.trainer.checkpoint_callback.best_model_score)

    remaining = trials - len(study.get_trials(states=_FINISHED))
    if remaining > 0:  # a trial that stops with a data error (NaN loss) fails alone
        study.optimize(objective, n_trials=remaining, catch=(UserError,))
    _write_trials(study, space, out / "trials.csv")
    if not study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        raise UserError(
            f"none of the {len(study.trials)} trials completed (all pruned or failed; see "
            f"{out / 'trials.csv'}). Widen the space, run more --trials, or check the data."
        )
    best_yaml = _write_best(study, out, monitor=monitor, direction=direction)
    return study, best_yaml


def _open_study(
    out: Path, *, searched: dict, monitor: str, direction: str, seed: int
) -> optuna.Study:
    """The study stored in ``OUT/study.db`` (made if new); refused if it searched other
    options or another space, or scored on another monitor. Trials left running by a killed
    run are marked failed."""
    study = optuna.create_study(
        study_name="seqclass", storage=f"sqlite:///{out / 'study.db'}", load_if_exists=True,
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )  # fmt: skip
    for stale in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # left by a killed run
    scored_on = study.user_attrs.get("monitor", monitor)
    if scored_on != monitor:
        raise UserError(
            f"{out / 'study.db'} scored its trials on {scored_on}, not {monitor}; give another "
            f"--out, or --checkpoint.monitor {scored_on} to resume it."
        )
    if study.user_attrs.get("searched", searched) != searched:
        raise UserError(
            f"{out / 'study.db'} holds a search of other options or another space; its trials "
            "cannot be compared with these. Give another --out, or the same options to resume it."
        )
    study.set_user_attr("searched", searched)
    study.set_user_attr("monitor", monitor)
    return study


def _write_best(study: optuna.Study, out: Path, *, monitor: str, direction: str) -> Path:
    """Write ``best.yaml`` (the best trial's config, training into ``OUT/best``) and
    ``tune.png``; return the YAML's path."""
    best = study.best_trial
    config = yaml.safe_load(Path(best.user_attrs["config"]).read_text())
    config["trainer"]["default_root_dir"] = str(out / "best")
    config["checkpoint"]["dirpath"] = None  # beside the new run, not the trial's
    best_yaml = out / "best.yaml"
    best_yaml.write_text(
        f"# Best of {len(study.trials)} trials: {monitor}={best.value:.4f} (trial {best.number})\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    finished = study.get_trials(states=_FINISHED)
    plot_trials(
        [t.number for t in finished],
        [_score(t) for t in finished],
        [t.state == optuna.trial.TrialState.PRUNED for t in finished],
        metric=monitor,
        direction=direction,
        path=out / "tune.png",
    )
    return best_yaml


def _score(trial: optuna.trial.FrozenTrial) -> float:
    """A finished trial's value; a pruned one's last reported score."""
    if trial.value is not None:
        return trial.value
    return trial.intermediate_values[max(trial.intermediate_values)]


# options that change what the loss measures: trials that differ in them score on other scales
_LOSS_SCALES = ("model.label_smoothing", "model.class_weights")


def _check_comparable(space: dict[str, dict], monitor: str) -> None:
    """Refuse a search whose trials' scores would not be comparable: a loss monitored while
    the space varies how that loss is computed (less smoothing scores lower, whatever it learns)."""
    varied = [key for key in _LOSS_SCALES if key in space]
    if varied and "loss" in monitor:
        raise UserError(
            f"the search space varies {', '.join(varied)}, which changes how {monitor} is "
            f"computed, so trials would be ranked by their loss's scale rather than by what "
            "they learn. Score them on a metric: --checkpoint.monitor val_macro_f1 "
            "--checkpoint.mode max (or val_acc), or leave those options out of the space."
        )


def _objective_of(cli) -> tuple[str, str]:
    checkpoint = cli.trainer.checkpoint_callback
    return checkpoint.monitor, "maximize" if checkpoint.mode == "max" else "minimize"


def _write_trials(study: optuna.Study, space: dict, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial", "state", "value", *space])
        for t in study.trials:
            writer.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value,
                             *(t.params.get(k, "") for k in space)])  # fmt: skip
