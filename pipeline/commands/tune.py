"""Hyper-parameter search with Optuna (TPE, median pruning) over the options of a YAML
search space, each trial scored on the val split (15 % of train where fit would draw none);
the study is kept in OUT/study.db and resumes. Writes OUT/best.yaml (run it with `seqclass fit
--config OUT/best.yaml`), OUT/trials.csv and OUT/tune.png. Other options (--config, --model.*,
--data.*, --trainer.*) are those of `seqclass fit`."""

from __future__ import annotations

import argparse

from pipeline.core.arguments import count, output_folder
from pipeline.core.errors import UserError
from pipeline.core.presets import preset_path

FIT_OPTIONS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trials", type=count(1), default=20, help="finished trials the study holds"
    )
    parser.add_argument(
        "--space", type=preset_path, default="configs/tune/space.yaml",
        help="YAML search space: options and their ranges (default configs/tune/space.yaml)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=output_folder,
        help="folder to write (default: RUN/tune, RUN being the fit options' "
        "--trainer.default_root_dir, runs by default)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")


def run(ns: argparse.Namespace) -> None:
    from pipeline.training.tuning import read_space, tune

    if not ns.space.is_file():
        raise UserError(f"search space {ns.space} not found; see configs/tune/space.yaml.")
    study, best_yaml = tune(
        ns.fit_args, read_space(ns.space), trials=ns.trials, out=ns.out, seed=ns.seed
    )
    best, count = study.best_trial, len(study.trials)
    print(
        f"tune: {count} trial{'s' * (count != 1)} in {best_yaml.parent / 'study.db'}; best trial "
        f"{best.number}: {study.user_attrs['monitor']}={best.value:.4f} with {best.params}\n"
        f"  ready to run: seqclass fit --config {best_yaml}"
    )
