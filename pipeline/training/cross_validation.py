"""`seqclass cv`: k-fold cross-validation of a `seqclass fit` configuration.

Fold k holds out the k-th of `folds` stratified (and, with groups, grouped) folds of the train
and val samples as its validation split (`SequenceDataModule(fold=k)`); the test split is not
touched. Each fold trains from scratch into ``OUT/fold_k`` and is scored on its held-out fold
with its best checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core.distributed import rank_and_world
from pipeline.core.plots import plot_folds

METRICS = ("val_acc", "val_macro_f1", "val_loss")


def cross_validate(fit_args: list[str], folds: int, out: Path | None) -> tuple[dict, Path]:
    """Train and score one model per fold; write ``OUT/cv.json`` and ``OUT/cv.png`` (the
    first process, under DDP). OUT defaults to ``cv`` in the fit options' run folder.

    The standard deviation is the sample one (ddof=1) over the folds.
    """
    from pipeline.training.lightning_cli import make_cli

    if out is None:  # beside the runs of these fit options (a config's, or runs/)
        base = make_cli([*fit_args, "--trainer.logger=false"], run=False)
        out = Path(base.trainer.default_root_dir) / "cv"
    results = []
    for fold in range(folds):
        cli = make_cli([*fit_args, f"--data.fold={fold}", f"--data.folds={folds}",
                        f"--trainer.default_root_dir={out / f'fold_{fold}'}"], run=False)  # fmt: skip
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        (scores,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path="best",
                                         verbose=False)  # fmt: skip
        counts = cli.datamodule.split_counts()
        results.append({
            "fold": fold,
            **{m: float(scores[m]) for m in METRICS},
            "train_samples": sum(counts["train"].values()),
            "val_samples": sum(counts["val"].values()),
            "checkpoint": cli.trainer.checkpoint_callback.best_model_path,
        })  # fmt: skip
    table = {m: np.array([r[m] for r in results]) for m in METRICS}
    summary = {
        "folds": results,
        "mean": {m: float(v.mean()) for m, v in table.items()},
        "std": {m: float(v.std(ddof=1)) for m, v in table.items()},
        "args": fit_args,
    }
    path = out / "cv.json"
    if rank_and_world()[0] == 0:  # under DDP every process holds the same, synced scores
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        plot_folds(results, METRICS, out / "cv.png")
    return summary, path
