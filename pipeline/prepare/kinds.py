"""Kinds of features by name: what each kind is and does, in one place.

A feature folder's `feature_settings.json`, and every checkpoint trained on it, names the kind
of its features: ``video``, ``signal`` or ``fusion``; sequence files made elsewhere name none
(``sequences``). `feature_kind(settings)` finds the kind, whose methods say which raw inputs it
takes, which streams lie side by side in its features, how new raw inputs are encoded as for
training, and how an explanation is drawn. A new kind is a `FeatureKind` subclass registered
with `@register` (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from feature_extractors.signal import RECORDING_SUFFIXES, SignalPreprocessing, load_recording
from feature_extractors.signal.io import channel_names
from feature_extractors.video import (
    VIDEO_SUFFIXES,
    FrameSampling,
    MotionSettings,
    iter_frame_chunks,
)
from pipeline.core.errors import UserError
from pipeline.core.plots import plot_frame_importance, plot_step_importance, plot_stream_importance
from pipeline.data.cache import feature_path
from pipeline.data.discovery import Sample, discover_unlabelled
from pipeline.data.sequence_files import SEQUENCE_SUFFIXES, load_sequence
from pipeline.data.streams import STREAM_SUFFIXES, discover_unlabelled_stream_samples
from pipeline.prepare.encodings import StreamEncoding, signal_encoding, video_encoding
from pipeline.prepare.extract import video_encoders
from pipeline.prepare.fusion import fuse

Failed = list[tuple[Path, str]]
_KINDS: dict[str, FeatureKind] = {}


def register(cls: type[FeatureKind]) -> type[FeatureKind]:
    """Class decorator: make a kind known by its `name`."""
    _KINDS[cls.name] = cls()
    return cls


def list_kinds() -> list[str]:
    """The names `feature_kind` knows."""
    return sorted(_KINDS)


def feature_kind(settings: dict | None) -> FeatureKind:
    """The kind of the features that `settings` (a `feature_settings.json`) describe."""
    name = (settings or {}).get("kind", SequenceFiles.name)
    if name not in _KINDS:
        raise UserError(
            f"features of kind {name!r}: this version knows {', '.join(list_kinds())}. Use the "
            "version that made them, or make them again."
        )
    return _KINDS[name]


class FeatureKind:
    """A kind of features: the base answers for sequence files taken as they are."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]  # the raw inputs it encodes
    settings_must_match: ClassVar[bool] = False  # data for a model must carry its settings

    def streams(self, settings: dict) -> list[tuple[str, int]]:
        """`(name, channels)` of the streams side by side in the features; empty for one."""
        return []

    def encoding(self, settings: dict, **run) -> StreamEncoding:
        """The extractor that makes these features from raw inputs; `run`: its `batch_size`,
        `num_workers`, `device` and `dim`."""
        raise UserError(f"{self.name} features are not made from raw inputs here")

    def encode(
        self,
        settings: dict,
        paths: list[Path],
        out: Path,
        *,
        fill: dict[str, np.ndarray] | None = None,
        **run,
    ) -> tuple[list[Sample], Failed]:
        """Feature files under `out` of the raw inputs `paths` (files or folders), made as
        `settings` say, and the inputs that failed; each sample's `source` is its raw input.
        `fill`: values for a missing stream; `run`: as for `encoding`."""
        encoding, samples, failed = self.encoding(settings, **run), [], []
        for i, path in enumerate(paths):
            features = out / str(i)
            found = discover_unlabelled(path, self.suffixes)
            report = encoding.run(path, features, found)
            failed += report.failed
            bad = {p for p, _ in report.failed}
            samples += [
                replace(s, path=feature_path(s.path, path, features), source=s.path)
                for s in found
                if s.path not in bad
            ]
        return samples, failed

    def sample_streams(self, path: Path) -> str | None:
        """The streams a feature file holds, joined by ``+`` (None: the kind has one)."""
        return None

    def missing_stream_values(self, settings: dict, mean: np.ndarray) -> dict[str, np.ndarray]:
        """Per stream file of a sample, what it is given when missing: its part of the training
        mean `mean` (none: the kind's inputs are single files)."""
        return {}

    def draw(self, settings: dict, drawing: Drawing) -> None:
        """Draw an explanation: each step's importance over the input's first channels."""
        series = load_sequence(drawing.features).T
        _draw_steps(drawing, series, drawing.times, xlabel="step")


def _draw_steps(
    drawing: Drawing, series: np.ndarray, series_times: np.ndarray, *, xlabel: str,
    channels: list[str] | None = None,
) -> None:  # fmt: skip
    """Plot `series [C, N]` at `series_times` with the drawing's importance per step; the
    channels are named as the input names them (`channel_names`: a CSV header, EDF labels), or
    `channels` where those were read."""
    names = channel_names(drawing.source, channels)
    if names is not None and len(names) != len(series):
        names = None
    plot_step_importance(series, series_times, times=drawing.times, importance=drawing.importance,
                         attention=drawing.attention, title=drawing.title, xlabel=xlabel,
                         path=drawing.target, names=names)  # fmt: skip


@dataclass(kw_only=True)
class Drawing:
    """What an explanation's figure shows: importance (and attention) per step at `times`, and
    each stream's, for the raw input `source` whose features are in `features`."""

    source: Path
    features: Path
    times: np.ndarray
    importance: np.ndarray
    attention: np.ndarray | None
    streams: dict[str, np.ndarray]
    title: str
    target: Path


@register
class SequenceFiles(FeatureKind):
    """`[T, D]` files made elsewhere: classified as they are."""

    name = "sequences"
    suffixes = SEQUENCE_SUFFIXES

    def encode(self, settings, paths, out, *, fill=None, **run):
        return [s for p in paths for s in discover_unlabelled(p, SEQUENCE_SUFFIXES)], []


@register
class VideoFeatures(FeatureKind):
    """A backbone's features per sampled frame, motion descriptors beside them, or both."""

    name = "video"
    suffixes = VIDEO_SUFFIXES

    def streams(self, settings):
        if not (settings.get("backbone") and settings.get("motion")):
            return []
        motion = MotionSettings(**settings["motion"]).dim
        return [("appearance", settings["feature_dim"] - motion), ("motion", motion)]

    def encoding(self, settings, *, dim=None, **run):
        return video_encoding(*video_encoders(settings), dim=dim, **run)

    def draw(self, settings, drawing):
        sampling = FrameSampling(**settings["sampling"])
        frames = [f for chunk, _ in iter_frame_chunks(drawing.source, sampling, 64) for f in chunk]
        plot_frame_importance(
            frames,
            importance=drawing.importance,
            attention=drawing.attention,
            title=drawing.title,
            path=drawing.target,
        )


@register
class SignalFeatures(FeatureKind):
    """Recordings through a `SignalPreprocessing` chain."""

    name = "signal"
    suffixes = RECORDING_SUFFIXES
    settings_must_match = True  # sequences without settings may come from another chain

    def encoding(self, settings, *, dim=None, **run):
        return signal_encoding(SignalPreprocessing.from_settings(settings), dim)

    def draw(self, settings, drawing):
        chain = SignalPreprocessing.from_settings(settings)
        data, fs = load_recording(
            drawing.source, chain.fs, variable=chain.variable, channels=chain.channels,
            nan_policy=chain.nan_policy,
        )  # fmt: skip
        _draw_steps(drawing, data, np.arange(data.shape[1]) / fs, xlabel="time (s)",
                    channels=chain.channels)  # fmt: skip


@register
class FusedStreams(FeatureKind):
    """Several streams of one moment (a video, sensor recordings) aligned on one time base."""

    name = "fusion"
    suffixes = STREAM_SUFFIXES

    def streams(self, settings):
        found = []
        for stream in settings["streams"]:
            inner = feature_kind(stream["settings"]).streams(stream["settings"])
            found += [(f"{stream['name']}.{n}", w) for n, w in inner] or [
                (stream["name"], stream["dim"])
            ]
        return found

    def missing_stream_values(self, settings, mean):
        dims = [stream["dim"] for stream in settings["streams"]]
        parts = np.split(mean, np.cumsum(dims)[:-1])
        return {s["name"]: part for s, part in zip(settings["streams"], parts, strict=True)}

    def encode(self, settings, paths, out, *, fill=None, **run):
        """Each sample folder's streams made and aligned as for training; with `fill`, a
        sample that lacks a stream is given those values (each fused file lists its streams)."""
        names = [s["name"] for s in settings["streams"]]
        encodings = {
            s["name"]: feature_kind(s["settings"]).encoding(s["settings"], dim=s["dim"], **run)
            for s in settings["streams"]
        }
        samples, failed = [], []
        for i, path in enumerate(paths):
            found = discover_unlabelled_stream_samples(path)
            if not any(name in s.streams for s in found for name in names):
                given = sorted({name for s in found for name in s.streams})
                raise UserError(
                    f"{path}: holds the streams {given}, but the model was trained on {names}; "
                    "name each stream's file as in training (camera.mp4, imu.csv, ...)."
                )
            _, report = fuse(found, path, out / str(i), encodings=encodings, fill=fill)
            failed += report.failed
            for sample in found:
                target = out / str(i) / f"{sample.name}.npz"
                if str(target) in report.used and target.is_file():
                    samples.append(Sample(target, sample.label, "predict", sample.folder))
        return samples, failed

    def sample_streams(self, path):
        with np.load(path, allow_pickle=False) as npz:
            return "+".join(npz["streams"].tolist())

    def draw(self, settings, drawing):
        plot_stream_importance(
            drawing.times, drawing.streams, title=drawing.title, path=drawing.target
        )
