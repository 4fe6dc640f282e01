"""Apply a trained checkpoint to raw inputs, with the feature settings it was trained on.

A checkpoint from `fit` holds the feature settings of its training data. For video features
that is the backbone, weights, layer, pooling grid, frame sampling and motion descriptors:
`classify` decodes and encodes new videos exactly that way (streaming, with the extraction
engine) and runs the trained head. For
signals it is the preprocessing chain (rate, filters, decomposition). Sequence files made
elsewhere are classified as they are.
"""

from __future__ import annotations

import inspect
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from feature_extractors.devices import float32_convolutions, resolve_device
from pipeline.core.errors import UserError
from pipeline.data.batching import SequenceDataset, length_batches, pad_collate
from pipeline.data.discovery import Sample, columns_of, step_times
from pipeline.data.sequence_files import TRANSPOSE_FIX, row_vector_note, sequence_shape
from pipeline.models.config import NetConfig
from pipeline.models.video_classifier import VideoClassifier
from pipeline.prepare.extract import video_encoders
from pipeline.prepare.kinds import VideoFeatures, feature_kind
from pipeline.training.lit_module import SequenceClassifier, with_legacy_defaults


@dataclass
class Classification:
    """Class probabilities `[N, K]` for `samples` (per-step models: a `[T_i, K]` tensor each),
    and the inputs that could not be read."""

    samples: list[Sample]
    probs: torch.Tensor | list[torch.Tensor]
    class_names: list[str]
    failed: list[tuple[Path, str]] = field(default_factory=list)
    times: list[np.ndarray] | None = None  # per-step models: seconds of each step
    streams: list[str] | None = None  # fused models: the streams of each sample, joined by +

    @property
    def inputs(self) -> list[Path]:
        """The raw input of each sample (its file; for fused samples, their folder)."""
        return [s.source or s.path for s in self.samples]

    @property
    def predicted(self) -> list[str] | list[list[str]]:
        """The most probable class of each sample (per-step models: of each of its steps)."""
        if isinstance(self.probs, list):
            return [[self.class_names[k] for k in p.argmax(-1).tolist()] for p in self.probs]
        return [self.class_names[k] for k in self.probs.argmax(-1).tolist()]


def load_classifier(checkpoint: str | Path) -> SequenceClassifier:
    """The trained model of a `fit` checkpoint, loaded with `weights_only=True`, in eval mode.

    Only the model's own hyperparameters are read: names a checkpoint gives for code to import
    (LightningCLI's ``_instantiator``) are ignored, so a stranger's file cannot run code.
    """
    accepted = {*inspect.signature(SequenceClassifier).parameters, *NetConfig.__dataclass_fields__}
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        hparams = with_legacy_defaults(ckpt["hyper_parameters"])
        hparams = {k: v for k, v in hparams.items() if k in accepted}
        model = SequenceClassifier(**hparams)
        model.load_state_dict(ckpt["state_dict"])
    except Exception as err:  # torch.load alone raises a dozen exception types on bad files
        raise UserError(
            f"{checkpoint}: not a checkpoint of a trained model ({type(err).__name__}: {err}). "
            "Pass a .ckpt file written by `seqclass fit` (checkpoints/best.ckpt or last.ckpt)."
        ) from None
    return model.eval()


def export_classifier(
    classifier: SequenceClassifier, device: str = "cpu"
) -> tuple[torch.jit.ScriptModule, dict]:
    """TorchScript of a trained model (any batch size and length) for inputs on `device`, and
    its info: class names, inputs and outputs, frame size and motion descriptor settings (None
    without), feature settings, device. A video model with a CNN takes preprocessed frames
    (and their motion descriptors); every other model takes its feature sequences, `[B, T, D]`
    as `extract`, the signal chain or the user wrote them, with their `lengths [B]`.

    TorchScript rather than `torch.export`: `torch.export` fixes the LSTM's time axis to the
    example's length (pytorch/pytorch#115092), tracing does not. A trace keeps the devices it
    saw (the recurrent layers' zero state, each `arange`), so it is traced on `device`; it also
    keeps each convolution's TF32 switch, so it is traced with TF32 off: float32 on any GPU, as
    `extract` computes the features.
    """
    settings = classifier.hparams.feature_settings
    video = isinstance(feature_kind(settings), VideoFeatures)
    backbone, _, motion = video_encoders(settings) if video else (None, None, None)
    steps, width, size = 16, classifier.hparams.input_size, None
    if backbone is not None:  # one module: frames -> CNN -> the trained network
        size, motion_dim = backbone.preprocess.crop_size[0], 0 if motion is None else motion.dim
        model = VideoClassifier(backbone.model, classifier.net, size, motion_dim)
        example = (torch.zeros(1, steps, 3, size, size), torch.tensor([steps]))
        inputs = f"frames [B, T, 3, {size}, {size}] float, lengths [B] int64"
        if motion_dim:
            example += (torch.zeros(1, steps, motion_dim),)
            inputs += f", motion [B, T, {motion_dim}] float"
    else:
        model = classifier.net
        example = (torch.zeros(1, steps, width), torch.tensor([steps]))
        inputs = f"features [B, T, {width}] float, lengths [B] int64"
    model = model.to(device).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice, and nn.LSTM's harmless tracer checks
        with torch.no_grad(), float32_convolutions():
            module = torch.jit.trace(model, tuple(t.to(device) for t in example))
    classes = len(classifier.class_names)
    info = {
        "class_names": classifier.class_names,
        "inputs": inputs,
        "frame_size": size,
        "outputs": f"logits [B, T, {classes}]" if classifier.per_step else f"logits [B, {classes}]",
        "motion": None if motion is None else motion.as_dict(),
        "feature_settings": settings,
        "device": str(device),
    }
    return module, info


def classify(
    paths: list[str | Path],
    checkpoint: str | Path,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str = "cpu",
) -> Classification:
    """Class probabilities for raw videos or recordings (or sequence files), files or folders,
    on `device` (``cpu``, ``cuda``, ``cuda:N``, or ``auto``: a GPU where torch finds one).

    Inputs that cannot be read are skipped and listed in `Classification.failed`.
    """
    device = checked_device(device)
    classifier = load_classifier(checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        samples, failed = encode_inputs(
            classifier, paths, Path(tmp), batch_size=batch_size, num_workers=num_workers,
            device=device,
        )  # fmt: skip
        return _classified(classifier, samples, failed, device)


def checked_device(name: str) -> str:
    """`name` as the device to run on (`resolve_device`: ``auto`` is a GPU where torch finds
    one); a UserError that says why when this machine has no such device."""
    try:
        return resolve_device(name)
    except ValueError as err:
        raise UserError(f"device {err}; pass cpu or a GPU this machine has.") from None


def encode_inputs(
    classifier: SequenceClassifier,
    paths: list[str | Path],
    out: Path,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str = "cpu",
) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """Feature files, under `out`, of raw inputs made as for the checkpoint's training data
    (its kind's `encode`: videos, recordings, fused streams; sequence files as they are), and
    the inputs that failed. Each sample's `source` is its raw input.

    A model trained with stream dropout also takes samples that lack a stream: it is given the
    stream's training mean."""
    settings = classifier.hparams.feature_settings or {}
    kind = feature_kind(settings)
    fill = None
    if classifier.hparams.stream_dropout > 0 and classifier.streams:
        fill = kind.missing_stream_values(settings, classifier.net.channel_mean.cpu().numpy())
    samples, failed = kind.encode(
        settings, [Path(p) for p in paths], out, fill=fill,
        batch_size=batch_size, num_workers=num_workers, device=device,
    )  # fmt: skip
    return _with_model_channels(classifier, samples, failed)


def _with_model_channels(
    classifier: SequenceClassifier, samples: list[Sample], failed: list[tuple[Path, str]]
) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """The samples whose files have the model's channels per step (for files that name them,
    its channels in its order); the others join `failed`."""
    expected, trained_columns, kept = classifier.hparams.input_size, classifier.hparams.columns, []
    settings = classifier.hparams.feature_settings or {}
    read = settings.get("channels") if settings.get("kind") == "signal" else None
    for sample in samples:
        try:
            steps, channels = sequence_shape(sample.path)
        except UserError as err:
            failed.append((sample.source or sample.path, str(err)))
            continue
        columns = columns_of(sample, read) if trained_columns is not None else None
        if channels != expected:
            why = f"{channels} channels per step, but the model was trained on {expected}"
        elif columns is not None and columns != trained_columns:
            why = (
                f"channels {','.join(columns)}, but the model was trained on "
                f"{','.join(trained_columns)} (a channel is known by its place)"
            )
        else:
            kept.append(sample)
            continue
        note = row_vector_note(sample.path)
        if not note and steps == expected != channels:
            note = f"Its {steps} rows are the model's channel count: {TRANSPOSE_FIX}"
        fix = f"give inputs made like its training data. {note}".strip()
        failed.append((sample.source or sample.path, f"{why}; {fix}"))
    return kept, failed


def _classified(
    classifier: SequenceClassifier, samples: list[Sample], failed: list, device: str
) -> Classification:
    """Run the trained head over the samples' feature files."""
    probs = _head_probs(classifier, [s.path for s in samples], device)
    times = [step_times(s) for s in samples] if classifier.per_step else None
    kind = feature_kind(classifier.hparams.feature_settings)
    streams = [kind.sample_streams(s.path) for s in samples]  # None each for a single stream
    return Classification(samples, probs, classifier.class_names, failed, times,
                          streams if any(streams) else None)  # fmt: skip


def _head_probs(
    classifier: SequenceClassifier, files: list[Path], device: str
) -> torch.Tensor | list[torch.Tensor]:
    dataset = SequenceDataset([Sample(f, None, "predict") for f in files], [])
    return head_probs(classifier, dataset, [sequence_shape(f)[0] for f in files], device)


def head_probs(
    classifier: SequenceClassifier, items: Sequence[dict], lengths: list[int], device: str
) -> torch.Tensor | list[torch.Tensor]:
    """The classifier's probabilities `[N, K]` (per-step models: a `[T_i, K]` tensor each) of
    `items` (as `SequenceDataset` gives them: `x [T_i, D]`, `y`, `index`) of `lengths` steps,
    in their order; run on `device` in batches of similar lengths."""
    if not items:
        return [] if classifier.per_step else torch.zeros(0, len(classifier.class_names))
    classifier.to(device)
    probs: dict[int, torch.Tensor] = {}  # batches go by length: put each back in its place
    batches = length_batches(lengths, 32)
    loader = DataLoader(items, batch_sampler=batches, collate_fn=pad_collate)
    with torch.inference_mode():
        for i, batch in enumerate(loader):
            batch = {k: v.to(device) for k, v in batch.items()}
            rows = classifier.per_sample_probs(classifier.predict_step(batch, i))
            probs.update(zip(batch["index"].tolist(), rows, strict=True))
    ordered = [probs[i] for i in range(len(items))]
    return ordered if classifier.per_step else torch.stack(ordered)
