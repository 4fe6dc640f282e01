"""Run outputs people read: metrics.json, predictions CSVs, and report.md with its figures."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import UserError
from pipeline.core.plots import plot_confusion, plot_per_class, plot_training_curves
from pipeline.data.discovery import Sample, step_times


def write_metrics(run_dir: str | Path, results: dict, num_samples: int) -> Path:
    """Write test metrics (accuracy, macro-F1, per-class precision/recall, confusion matrix)."""
    path = Path(run_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "num_samples": num_samples}, indent=2) + "\n")
    return path


def write_predictions(
    path: str | Path,
    samples: Sequence[Sample],
    probs: torch.Tensor,
    *,
    class_names: Sequence[str],
    streams: Sequence[str] | None = None,
) -> Path:
    """One row per sample: path, true label (if known), predicted label, a probability per class.

    Windows of long recordings also get their first and last step's times (``start_s, end_s``);
    fused samples the streams they were classified on (`streams`, e.g. ``camera+vibration``).
    """
    windows = any(s.seconds is not None for s in samples)
    rows = []
    for i, (sample, p) in enumerate(zip(samples, probs.tolist(), strict=True)):
        times = [f"{t:.6g}" for t in sample.seconds or ("", "")] if windows else []
        used = [streams[i]] if streams is not None else []
        rows.append([_source(sample), *times, *used, sample.label or "", p])
    columns = ["path", *(["start_s", "end_s"] if windows else []),
               *(["streams"] if streams is not None else []), "label"]  # fmt: skip
    return _write(path, columns, rows, class_names)


def write_step_predictions(
    path: str | Path,
    samples: Sequence[Sample],
    probs: Sequence[torch.Tensor],
    *,
    class_names: Sequence[str],
    times: Sequence[np.ndarray],
    step_labels: dict[Path, np.ndarray],
) -> Path:
    """One row per time step of each sample (`probs[i]`: `[T_i, K]`, `times[i]`: `[T_i]`
    seconds, from `step_times`), with its true label where known."""
    rows = []
    for sample, p, t_i in zip(samples, probs, times, strict=True):
        labels = step_labels.get(sample.path)
        labels = labels[sample.window] if labels is not None else np.full(len(p), -1)
        for t, k, row in zip(t_i.tolist(), labels.tolist(), p.tolist(), strict=True):
            rows.append([_source(sample), f"{t:.6g}", class_names[k] if k >= 0 else "", row])
    return _write(path, ["path", "time_s", "label"], rows, class_names)


def write_indexed_predictions(
    path: str | Path,
    samples: Sequence[Sample],
    probs: dict[int, torch.Tensor],
    *,
    class_names: Sequence[str],
    step_labels: dict[Path, np.ndarray] | None = None,
) -> Path:
    """Predictions of `samples[i]` for every index `i` of `probs`, in input order: a row per
    sample, or with `step_labels` (a per-step model) a row per time step."""
    order = sorted(probs)
    ordered = [samples[i] for i in order]
    if step_labels is not None:
        times = [step_times(s) for s in ordered]
        return write_step_predictions(
            path,
            ordered,
            [probs[i] for i in order],
            class_names=class_names,
            times=times,
            step_labels=step_labels,
        )
    return write_predictions(
        path, ordered, torch.stack([probs[i] for i in order]), class_names=class_names
    )


def write_report(run_dir: str | Path) -> Path:
    """Draw a test run's figures and write ``report.md``, which shows them beside the metrics,
    the data counts, the misclassified samples and the configuration."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise UserError(
            f"{run_dir}: no metrics.json here. Give the run folder that `seqclass test` printed "
            "(runs/.../version_N)."
        )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    names = metrics["class_names"]
    figures = {
        "Confusion matrix": plot_confusion(
            metrics["confusion_matrix"], names, run_dir / "confusion_matrix.png"
        ),
        "Per-class scores": plot_per_class(
            {k: metrics[k] for k in ("precision", "recall", "f1")}, names,
            run_dir / "per_class.png",
        ),
    }  # fmt: skip
    log = Path(metrics.get("fit_log_dir") or run_dir) / "metrics.csv"
    curves = plot_training_curves(log, run_dir / "training_curves.png") if log.is_file() else None
    if curves is not None:
        figures["Training curves"] = curves
    lines = [
        f"# Test report: {run_dir}",
        "",
        f"Checkpoint: `{metrics.get('checkpoint', '?')}`; training logs: "
        f"`{metrics.get('fit_log_dir') or 'not recorded'}`",
        "",
        "## Metrics",
        "",
        f"Accuracy **{metrics['accuracy']:.4f}**, macro-F1 **{metrics['macro_f1']:.4f}** on "
        f"{metrics['num_samples']} {metrics.get('unit', 'samples')}.",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {c} | {_score(metrics['precision'][c])} | {_score(metrics['recall'][c])} | "
          f"{_score(metrics['f1'][c])} | {metrics['support'][c]} |" for c in names),
        "",
        *_undefined_note(metrics, names),
        *_baselines(run_dir, metrics),
        *(f"![{title}]({png.name})\n" for title, png in figures.items()),
        *_data_table(metrics.get("data") or {}, names),
        *_features(metrics.get("feature_settings")),
        *_misclassified(run_dir / "test_predictions.csv"),
    ]  # fmt: skip
    if (run_dir / "config.yaml").is_file():
        config = (run_dir / "config.yaml").read_text()
        lines += ["## Configuration", "", "```yaml", config.rstrip(), "```", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _score(value: float | None) -> str:
    """A per-class score as the report shows it; "–" where it is undefined (None)."""
    return "–" if value is None else f"{value:.3f}"


def _undefined_note(metrics: dict, names: Sequence[str]) -> list[str]:
    scores = [metrics[k][c] for k in ("precision", "recall", "f1") for c in names]
    if all(score is not None for score in scores):
        return []
    return ["–: undefined, as a class has no test samples (recall) or nothing was predicted as "
            "it (precision); the macro-F1 leaves out a class with neither.", ""]  # fmt: skip


def _baselines(run_dir: Path, metrics: dict) -> list[str]:
    """The model beside the `seqclass baseline` runs (RUNS/baseline/*) of the same test split."""
    rows = []
    for path in sorted(run_dir.parent.glob("baseline/*/metrics.json")):
        other = json.loads(path.read_text())
        same_data = other.get("data_root") == metrics.get("data_root") is not None
        if same_data and (other.get("data") or {}).get("test") == metrics["data"].get("test"):
            rows.append(f"| {other['method']} (`{path.parent}`) | {other['accuracy']:.4f} | "
                        f"{other['macro_f1']:.4f} | {other['fit_seconds']:.1f} s |")  # fmt: skip
    if not rows:
        return []
    return [
        "## Beside the baselines", "", "On the same test samples "
        "(baselines train on the train and val splits).", "",
        "| model | accuracy | macro-F1 | fit time |", "| --- | ---: | ---: | ---: |",
        f"| this model | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} | |", *rows, "",
    ]  # fmt: skip


def _data_table(counts: dict[str, dict[str, int]], names: Sequence[str]) -> list[str]:
    if not counts:
        return []
    splits = list(counts)
    return [
        "## Data",
        "",
        f"| class | {' | '.join(splits)} |",
        f"| --- |{' ---: |' * len(splits)}",
        *(f"| {c} | {' | '.join(str(counts[s].get(c, 0)) for s in splits)} |" for c in names),
        f"| all | {' | '.join(str(sum(counts[s].values())) for s in splits)} |",
        "",
    ]


def _features(settings: dict | None) -> list[str]:
    """How the inputs became features: the settings of each fused stream, or of the one."""
    if not settings:
        return []
    streams = settings.get("streams") or [
        {
            "name": settings.get("kind", ""),
            "dim": settings.get("feature_dim", ""),
            "settings": settings,
        }
    ]
    return [
        "## Features",
        "",
        "| stream | channels | made with |",
        "| --- | ---: | --- |",
        *(f"| {s['name']} | {s['dim']} | `{json.dumps(s['settings'], sort_keys=True)}` |"
          for s in streams),
        "",
    ]  # fmt: skip


def _misclassified(predictions: Path, limit: int = 50) -> list[str]:
    if not predictions.is_file():
        return []
    with predictions.open() as fh:
        rows = list(csv.DictReader(fh))
    wrong = [r for r in rows if r["label"] and r["label"] != r["predicted"]]
    where = next((c for c in ("time_s", "start_s") if rows and c in rows[0]), None)
    shown = f" (first {limit} shown)" if len(wrong) > limit else ""
    lines = ["## Misclassified", "",
             f"{len(wrong)} of {len(rows)} rows of `{predictions.name}`{shown}.", ""]  # fmt: skip
    if wrong:
        lines += [f"| path |{f' {where} |' if where else ''} label | predicted | probability |",
                  f"| --- |{' ---: |' if where else ''} --- | --- | ---: |"]  # fmt: skip
        for r in wrong[:limit]:
            at = f" {r[where]} |" if where else ""
            lines.append(f"| {r['path']} |{at} {r['label']} | {r['predicted']} | "
                         f"{float(r['prob_' + r['predicted']]):.3f} |")  # fmt: skip
    return [*lines, ""]


def _source(sample: Sample) -> str:
    return str(sample.source or sample.path)


def _write(path: str | Path, columns: list[str], rows: list[list], class_names) -> Path:
    """Write `columns`, ``predicted`` and a probability per class; each row ends in its probs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow([*columns, "predicted", *(f"prob_{c}" for c in class_names)])
        for *fields, p in rows:
            best = max(range(len(p)), key=p.__getitem__)
            writer.writerow([*fields, class_names[best], *(f"{v:.6f}" for v in p)])
    return path
