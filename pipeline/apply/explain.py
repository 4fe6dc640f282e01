"""`seqclass explain`: which time steps (and features) made a model choose a class.

Integrated gradients (Sundararajan et al., 2017) attribute the class logit to every input value
``[T, D]``, relative to a baseline (the training mean: all zeros after normalization); their sum
over the features is the importance of each step. With attention pooling the attention weights
are shown as well. Pictures: for signals, the raw recording with the importance shaded along
time; for videos, a strip of the sampled frames with the importance of each; for fused streams,
each step's importance split by stream; for sequence files, their first channels.
"""

from __future__ import annotations

import csv
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.apply.classify import encode_inputs, load_classifier
from pipeline.core.errors import UserError
from pipeline.data.discovery import Sample, step_times
from pipeline.data.sequence_files import load_sequence, save_npz
from pipeline.models.sequence_net import SequenceNet
from pipeline.prepare.kinds import Drawing, feature_kind


def integrated_gradients(
    net: SequenceNet, x: torch.Tensor, target: int, *, steps: int = 32
) -> torch.Tensor:
    """Attributions `[T, D]` of logit `target` for one raw sequence `x [T, D]`.

    The path runs from the baseline (the normalization mean) to `x` in `steps` midpoint steps;
    the attributions sum to logit(x) - logit(baseline), up to the path's discretization.
    """
    baseline = net.channel_mean.expand_as(x)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    path = (baseline + alphas[:, None, None] * (x - baseline)).requires_grad_(True)
    lengths = torch.full((steps,), len(x), dtype=torch.long)
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):  # RNN backward in eval
        logits = net(path, lengths)[:, target]
        (grads,) = torch.autograd.grad(logits.sum(), path)
    return (x - baseline) * grads.mean(0)


@dataclass
class Explanation:
    """One input's explanation: the class explained, its probability, per-step importance
    (sums of the attributions over the features), and attention weights when pooled so."""

    sample: Sample
    class_name: str
    probability: float
    attributions: np.ndarray  # [T, D]
    attention: np.ndarray | None  # [T]
    times: np.ndarray  # [T] seconds (or step indices)
    stream_widths: dict[str, int] | None = None  # several streams: the channels of each, in order

    @property
    def importance(self) -> np.ndarray:
        return self.attributions.sum(1)

    @property
    def stream_importance(self) -> dict[str, np.ndarray]:
        """Each stream's importance per step `[T]` (empty when the input is one stream)."""
        if not self.stream_widths:
            return {}
        parts = np.split(self.attributions, np.cumsum(list(self.stream_widths.values()))[:-1], 1)
        return {name: part.sum(1) for name, part in zip(self.stream_widths, parts, strict=True)}


def explain(
    paths: list[str | Path],
    checkpoint: str | Path,
    out: str | Path,
    *,
    target: str | None = None,
    steps: int = 32,
    num_workers: int | None = None,
    device: str = "cpu",
) -> tuple[list[Explanation], list[tuple[Path, str]]]:
    """Explain the checkpoint's decision on each input (raw videos, recordings or sequence
    files): ``OUT/<name>.png`` and ``.npz`` each, and ``OUT/explain.csv``. `target` explains that
    class instead of the predicted one. Returns the explanations and the inputs that failed.

    Integrated gradients see the recurrent network only: the fixed kernel features count steps
    above a threshold, which has no gradient, so their head's share of the logit is left out
    (a warning says so)."""
    classifier = load_classifier(checkpoint).to(device)
    if classifier.net.encoder is None:
        raise UserError(
            f"{checkpoint}: a model of kernel features alone (--model.recurrent false) counts "
            "steps above thresholds, which have no gradient to attribute; explain needs the "
            "recurrent network."
        )
    if classifier.net.kernel_head is not None:
        warnings.warn(
            f"{checkpoint}: the attributions explain the recurrent network's logits; the kernel "
            "features' head (no gradient) also adds to the probabilities shown",
            stacklevel=2,
        )
    if classifier.per_step:
        raise UserError(
            f"{checkpoint}: this model labels every time step; `explain` shows which steps decided "
            "a sequence's single label, so it needs a sequence-to-label checkpoint."
        )
    names = classifier.class_names
    widths = dict(classifier.streams)
    if target is not None and target not in names:
        raise UserError(f"--target {target!r} is not one of the model's classes {names}.")
    out = Path(out)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        samples, failed = encode_inputs(
            classifier, paths, Path(tmp), num_workers=num_workers, device=device
        )
        figure_names = output_names([s.source or s.path for s in samples])
        for sample in samples:
            x = torch.from_numpy(load_sequence(sample.path)).to(device)
            net = classifier.net
            with torch.no_grad():
                attention = net.embed(x[None], torch.tensor([len(x)]))[1]
                probs = net(x[None], torch.tensor([len(x)])).softmax(-1)[0]
            k = names.index(target) if target is not None else int(probs.argmax())
            results.append(Explanation(
                sample, names[k], float(probs[k]),
                integrated_gradients(net, x, k, steps=steps).cpu().numpy(),
                None if attention is None else _per_input_step(attention[0], net.stride, len(x)),
                step_times(sample), widths or None,
            ))  # fmt: skip
            _draw(results[-1], classifier, out, figure_names[sample.source or sample.path])
    _write_summary(results, out / "explain.csv")
    return results, failed


def _per_input_step(attention: torch.Tensor, stride: int, steps: int) -> np.ndarray:
    """Attention over the recurrent steps, each shared evenly by the input steps it stands for
    (the last may stand for fewer than `stride`): `[steps]`, summing to 1 as before."""
    window = torch.arange(steps, device=attention.device) // stride
    return (attention[window] / torch.bincount(window)[window]).cpu().numpy()


def output_names(sources: list[Path]) -> dict[Path, str]:
    """A distinct file stem per input: its own stem, or where two inputs share one (`a/rec1.wav`,
    `b/rec1.wav`, `rec1.csv`), the folder and the whole name (`a_rec1.wav`, ...)."""
    repeated = {stem for stem, n in Counter(p.stem for p in sources).items() if n > 1}
    names: dict[Path, str] = {}
    for path in sources:
        name = path.stem if path.stem not in repeated else f"{path.parent.name}_{path.name}"
        while name in names.values():
            name += "_"
        names[path] = name
    return names


def _draw(result: Explanation, classifier, out: Path, name: str) -> None:
    """``OUT/<name>.npz`` (the numbers) and ``OUT/<name>.png``, drawn as the features' kind
    draws its inputs (a recording, video frames, streams, a sequence file's channels)."""
    source = result.sample.source or result.sample.path
    target = out / f"{name}.png"
    save_npz(target.with_suffix(".npz"), attributions=result.attributions,
             importance=result.importance, times=result.times, class_name=result.class_name,
             **({} if result.attention is None else {"attention": result.attention}))  # fmt: skip
    settings = classifier.hparams.feature_settings
    feature_kind(settings).draw(settings, Drawing(
        source=source, features=result.sample.path, times=result.times,
        importance=result.importance, attention=result.attention,
        streams=result.stream_importance, target=target,
        title=f"{source.name}: {result.class_name} (p={result.probability:.2f})",
    ))  # fmt: skip


def _write_summary(results: list[Explanation], path: Path) -> None:
    """A row per input; fused streams also get each stream's share of the absolute importance."""
    path.parent.mkdir(parents=True, exist_ok=True)
    streams = list(results[0].stream_widths or {}) if results else []
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "explained_class", "probability", "steps", "most_important_s",
                         *(f"share_{name}" for name in streams)])  # fmt: skip
        for r in results:
            top = np.argsort(-np.abs(r.importance))[:3]
            parts = {name: np.abs(v).sum() for name, v in r.stream_importance.items()}
            total = sum(parts.values()) or 1.0
            writer.writerow([str(r.sample.source or r.sample.path), r.class_name,
                             f"{r.probability:.4f}", len(r.importance),
                             " ".join(f"{r.times[i]:.4g}" for i in top),
                             *(f"{parts[name] / total:.4f}" for name in streams)])  # fmt: skip
