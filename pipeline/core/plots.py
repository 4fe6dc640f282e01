"""Figures of runs (PNG): confusion matrix, per-class scores, training curves, CV folds,
tuning trials, and the time-step importance of explanations."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Write `fig` to `path` (folders made as needed) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path) -> Path:
    """Counts and row-normalized (recall per true class) confusion matrices, side by side."""
    plt = pyplot()
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(1, keepdims=True)
    normalized = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 2.5 + 0.5 * len(class_names)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, values, title, fmt in (
        (axes[0], counts, "counts", "{:.0f}"),
        (axes[1], normalized, "normalized over each true class", "{:.2f}"),
    ):
        ax.imshow(values, cmap="Blues", vmin=0)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
        ax.set_yticks(range(len(class_names)), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        peak = values.max() or 1
        for (r, c), v in np.ndenumerate(values):
            color = "white" if v > peak / 2 else "black"
            ax.text(c, r, fmt.format(v), ha="center", va="center", color=color, fontsize=9)
    return save(fig, path)


def plot_per_class(
    scores: dict[str, dict[str, float | None]], class_names: Sequence[str], path: Path
) -> Path:
    """Grouped bars: `scores[metric][class]` for each metric (precision, recall, F1); an
    undefined score (None) has no bar."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(class_names), 3.5))
    x = np.arange(len(class_names))
    width = 0.8 / len(scores)
    for i, (metric, values) in enumerate(scores.items()):
        heights = [np.nan if values[c] is None else values[c] for c in class_names]
        ax.bar(x + (i - (len(scores) - 1) / 2) * width, heights, width, label=metric)
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


# (split, quantity) -> its per-epoch column in Lightning's CSV log
CURVE_COLUMNS = {("train", "loss"): "train_loss_epoch", ("val", "loss"): "val_loss",
                 ("train", "acc"): "train_acc", ("val", "acc"): "val_acc"}  # fmt: skip


def plot_training_curves(metrics_csv: Path, path: Path) -> Path | None:
    """Loss and accuracy per epoch, training and validation, from a run's CSV log (None when
    the log holds no epoch values)."""
    with metrics_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        for key in CURVE_COLUMNS.values():
            if row.get(key):
                series.setdefault(key, {})[int(row["epoch"]) + 1] = float(row[key])
    if not series:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, kind in zip(axes, ("loss", "acc"), strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            key = CURVE_COLUMNS[split, kind]
            if key in series:
                epochs = sorted(series[key])
                ax.plot(epochs, [series[key][e] for e in epochs], style, marker=".",
                        label="training" if split == "train" else "validation")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("loss" if kind == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(fig, path)


def plot_folds(folds: Sequence[dict], metrics: Sequence[str], path: Path) -> Path:
    """Per-fold bars of each metric with its mean (line) and standard deviation (band)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = np.array([f[metric] for f in folds])
        ax.bar(np.arange(len(values)) + 1, values, color="C0", alpha=0.8)
        mean, std = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        ax.axhline(mean, color="C3", label=f"mean {mean:.3f} ± {std:.3f}")
        ax.axhspan(mean - std, mean + std, color="C3", alpha=0.15)
        ax.set_xlabel("fold")
        ax.set_title(metric, fontsize=10)
        ax.set_xticks(np.arange(len(values)) + 1)
        ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


def plot_trials(
    numbers: Sequence[int], scores: Sequence[float], pruned: Sequence[bool], *, metric: str,
    direction: str, path: Path,
) -> Path:  # fmt: skip
    """Each trial's score (pruned ones hollow, at their last report) and the best so far."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    kept = [(n, v) for n, v, p in zip(numbers, scores, pruned, strict=True) if not p]
    cut = [(n, v) for n, v, p in zip(numbers, scores, pruned, strict=True) if p]
    if kept:
        ax.plot(*zip(*kept, strict=True), "o", color="C0", label="complete")
    if cut:
        ax.plot(*zip(*cut, strict=True), "o", mfc="none", color="C1", label="pruned")
    better = max if direction == "maximize" else min
    best = [better(v for n, v in kept if n <= m) for m, _ in kept]
    if kept:
        ax.step([n for n, _ in kept], best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_step_importance(
    series: np.ndarray, series_times: np.ndarray, *, times: np.ndarray, importance: np.ndarray,
    attention: np.ndarray | None, title: str, xlabel: str, path: Path, channels: int = 3,
    names: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """The input's first `channels` rows of `series [C, N]` (named `names`, else by number)
    over time with each model step's importance shaded behind them (darker: more important),
    and the signed importance (plus attention weights, if any) per step below."""
    plt = pyplot()
    shown = min(channels, len(series))
    fig, axes = plt.subplots(shown + 1, 1, figsize=(10, 1.6 * shown + 2.2), sharex=True)
    edges = _step_edges(times)
    weight = np.abs(importance) / (np.abs(importance).max() or 1.0)
    for c, ax in enumerate(axes[:-1]):
        for left, right, w in zip(edges[:-1], edges[1:], weight, strict=True):
            ax.axvspan(left, right, color="C3", alpha=0.6 * w, lw=0)
        ax.plot(series_times, series[c], lw=0.7, color="black")
        ax.set_ylabel(names[c] if names else f"channel {c}", fontsize=8)
    bars = axes[-1]
    bars.bar(times, importance, width=np.diff(edges), color=np.where(importance >= 0, "C3", "C0"))
    bars.set_ylabel("importance", fontsize=8)
    bars.set_xlabel(xlabel)
    if attention is not None:
        twin = bars.twinx()
        twin.plot(times, attention, color="C2", lw=1)
        twin.set_ylabel("attention", fontsize=8, color="C2")
    axes[0].set_title(f"{title}; shading: importance of each step", fontsize=10)
    return save(fig, path)


def plot_frame_importance(
    frames: Sequence[np.ndarray], *, importance: np.ndarray, attention: np.ndarray | None,
    title: str, path: Path, shown: int = 10,
) -> Path:  # fmt: skip
    """A strip of up to `shown` evenly spaced sampled frames, each titled with its importance,
    over a bar chart of every frame's importance (and attention weights, if any)."""
    plt = pyplot()
    picks = np.unique(np.linspace(0, len(frames) - 1, min(shown, len(frames))).round().astype(int))
    fig = plt.figure(figsize=(1.4 * len(picks) + 1, 4.2))
    grid = fig.add_gridspec(2, len(picks), height_ratios=[1.2, 1])
    peak = np.abs(importance).max() or 1.0
    for col, i in enumerate(picks):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(frames[i])
        ax.set_title(f"frame {i}\n{importance[i] / peak:+.2f}", fontsize=8)
        ax.axis("off")
    bars = fig.add_subplot(grid[1, :])
    colors = np.where(importance >= 0, "C3", "C0")
    bars.bar(np.arange(len(importance)), importance, color=colors)
    bars.set_xlabel("sampled frame")
    bars.set_ylabel("importance", fontsize=8)
    if attention is not None:
        twin = bars.twinx()
        twin.plot(np.arange(len(attention)), attention, color="C2", lw=1)
        twin.set_ylabel("attention", fontsize=8, color="C2")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def plot_stream_importance(
    times: np.ndarray, streams: dict[str, np.ndarray], *, title: str, path: Path
) -> Path:
    """Each step's importance split by stream: stacked bars of every stream's absolute
    importance `[T]` over time, and each stream's share of the whole beside the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.2))
    edges = _step_edges(times)
    total = sum(np.abs(v).sum() for v in streams.values()) or 1.0
    bottom = np.zeros(len(times))
    for name, importance in streams.items():
        share = np.abs(importance).sum() / total
        ax.bar(times, np.abs(importance), width=np.diff(edges), bottom=bottom,
               label=f"{name} ({share:.0%})", align="center")  # fmt: skip
        bottom += np.abs(importance)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("|importance|", fontsize=8)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{title}; each step's importance by stream", fontsize=10)
    return save(fig, path)


def _step_edges(times: np.ndarray) -> np.ndarray:
    """Boundaries between consecutive step times (half a step beyond each end)."""
    times = np.asarray(times, dtype=float)
    if len(times) == 1:
        return np.array([times[0] - 0.5, times[0] + 0.5])
    mids = (times[1:] + times[:-1]) / 2
    return np.concatenate([[2 * times[0] - mids[0]], mids, [2 * times[-1] - mids[-1]]])
