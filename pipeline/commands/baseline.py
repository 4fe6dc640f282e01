"""Train a reference classifier on the splits `seqclass fit` would use and score it on the test
split: MiniRocket, MultiRocket, Hydra or MultiRocket-Hydra (aeon: pip install
'seqclass[baselines]'), or per-channel summary statistics into a logistic regression. Writes metrics.json, test_predictions.csv and report.md like
`seqclass test`; a later `seqclass test` report under the same --trainer.default_root_dir shows
the baselines beside the model. Other options (--config, --data.*) are those of `seqclass fit`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.core.arguments import output_folder
from pipeline.core.errors import UserError

FIT_OPTIONS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.training.baselines import METHODS

    parser.add_argument(
        "--method",
        choices=METHODS,
        default="minirocket",
        help="the classifier (default minirocket)",
    )
    parser.add_argument(
        "--out", type=output_folder,
        help="folder to write (default: RUNS/baseline/METHOD, RUNS being "
        "--trainer.default_root_dir or runs)",
    )  # fmt: skip


def run(ns: argparse.Namespace) -> None:
    import torch

    from pipeline.data.batching import SequenceDataset
    from pipeline.training.baselines import fit_and_predict
    from pipeline.training.lightning_cli import make_cli
    from pipeline.training.metrics import test_metrics, test_results
    from pipeline.training.reports import write_indexed_predictions, write_metrics, write_report

    cli = make_cli(ns.fit_args, run=False)
    data = cli.datamodule
    data.setup("test")
    if data.per_step:
        raise UserError("baselines label whole sequences; data.per_step is not supported.")
    names = data.class_names
    splits = {s: SequenceDataset(data.splits.get(s) or [], names) for s in ("train", "val", "test")}
    if not len(splits["test"]):
        raise UserError(f"the test split of {data.root} is empty; a baseline needs one.")
    train = [splits["train"][i] for i in range(len(splits["train"]))]
    train += [splits["val"][i] for i in range(len(splits["val"]))]
    test = [splits["test"][i] for i in range(len(splits["test"]))]
    try:
        result = fit_and_predict(
            ns.method,
            [item["x"].numpy() for item in train],
            torch.tensor([item["y"] for item in train]).numpy(),
            test_x=[item["x"].numpy() for item in test],
            num_classes=len(names),
            seed=cli.config.seed_everything or 0,
        )
    except ImportError as err:
        raise UserError(str(err)) from None
    probs = torch.from_numpy(result.probs).float()
    targets = torch.tensor([item["y"] for item in test])
    metrics = test_metrics(len(names))
    metrics.update(probs, targets)
    results = test_results(metrics.compute(), names)
    out = ns.out or Path(cli.trainer.default_root_dir or "runs") / "baseline" / ns.method
    results |= {
        "unit": "samples", "data": data.split_counts(), "data_root": str(data.root),
        "method": ns.method, "trained_on": ["train", "val"], "fit_seconds": result.fit_seconds,
    }  # fmt: skip
    path = write_metrics(out, results, len(test))
    write_indexed_predictions(
        out / "test_predictions.csv", data.splits["test"], dict(enumerate(probs)), class_names=names
    )
    report = write_report(out)
    print(
        f"baseline {ns.method}: accuracy={results['accuracy']:.4f} "
        f"macro_f1={results['macro_f1']:.4f} on {len(test)} samples, fitted in "
        f"{result.fit_seconds:.1f} s -> {path}\n  report with figures: {report}"
    )
