"""`ArrayClassifier`: `fit` on in-memory sequences and labels, then `predict`, as scikit-learn,
sktime and aeon classifiers do, for a notebook or a script that holds its data as arrays.

`fit` writes the sequences as a class-folder tree of `[T, D]` files (the contract every other
path meets) in a temporary folder and trains on it with `seqclass fit`'s defaults and any of its
options; the trained model then stays in memory. Arrays are time first, `[T, D]` each, as
everywhere here: sktime's and aeon's `[N, D, T]` panels are `X.transpose(0, 2, 1)`, and an
array that looks like one is named in a warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from pipeline.apply.classify import checked_device, head_probs, load_classifier
from pipeline.core.errors import UserError
from pipeline.core.noise import hide_noisy_warnings
from pipeline.data.sequence_files import checked_sequence, looks_channels_first, save_sequence

QUIET_LOGGERS = ("pytorch_lightning", "lightning_fabric")
# fit options that would read other data than X, hold some of it out, or change it before the
# model sees it (which `predict`, running the model on X as given, would not)
NOT_FOR_ARRAYS = ("data.root", "data.predict_root", "data.test_fraction", "data.signal",
                  "data.window_length", "data.window_hop", "data.per_step")  # fmt: skip


def as_sequences(X: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """`X` as float32 `[T, D]` arrays: a list of `[T_i, D]` (or `[T_i]`) arrays, an `[N, T, D]`
    array, or an `[N, T]` one (one channel). Every one must be finite and have the same D."""
    if isinstance(X, np.ndarray | torch.Tensor) and X.ndim not in (2, 3):
        raise UserError(
            f"X has shape {tuple(X.shape)}: give [N, T, D] (N sequences of T steps of D "
            "channels), [N, T] for one channel, or a list of [T_i, D] arrays."
        )
    sequences = [checked_sequence(np.asarray(x), f"X[{i}]") for i, x in enumerate(X)]
    if sequences and all(len(x) == 1 for x in sequences):
        raise UserError(
            f"every sequence of X has one step (of {sequences[0].shape[1]} channels): sequences "
            "are [T, D], time first; an [N, D, T] panel (sktime's, aeon's) is "
            "X.transpose(0, 2, 1)."
        )
    first = sequences[0].shape[1] if sequences else None
    odd = next((i for i, x in enumerate(sequences) if x.shape[1] != first), None)
    if odd is not None:
        raise UserError(
            f"X[{odd}] has {sequences[odd].shape[1]} channels but X[0] has {first}; every "
            "sequence needs the same channels ([T, D], time first)."
        )
    shape = tuple(X.shape) if isinstance(X, np.ndarray | torch.Tensor) else ()
    if len(shape) == 3 and 1 < shape[1] < shape[2] and looks_channels_first(sequences):
        warnings.warn(
            f"X has shape {shape}, read as {shape[1]} steps of {shape[2]} channels, but it "
            f"changes far more smoothly across its {shape[2]} columns than from step to step, "
            "as an [N, D, T] panel (sktime's, aeon's) does; if it is one, pass "
            "X.transpose(0, 2, 1).",
            stacklevel=3,
        )
    return sequences


class ArrayClassifier(ClassifierMixin, BaseEstimator):
    """A sequence classifier for in-memory arrays, a scikit-learn estimator: `fit(X, y)`,
    `predict(X)`, `predict_proba(X)`, `score(X, y)` (accuracy), `classes_`; `clone`, searches
    and `cross_val_score` take it.

    Args:
        options: `seqclass fit` options without their dashes, as a config sets them:
            ``{"model.hidden_size": 64, "trainer.max_epochs": 50}``, or ``{"config": PATH}``
            first and others over it (a config that preprocesses recordings, `data.signal`, is
            for `seqclass fit`). Runs go to a temporary folder unless
            ``trainer.default_root_dir`` is given, where they stay (checkpoints, logs,
            `config.yaml`).
        seed: seeds the split and the training (``seed_everything``).
        device: where `predict` runs (``cpu``, ``cuda``, ``cuda:N``, or ``auto``: a GPU where
            torch finds one).
        verbose: show `fit`'s progress and messages.

    After `fit`: `classes_` (sorted labels), `model_` (the trained `SequenceClassifier`) and
    `checkpoint_` (its best checkpoint where the run is kept, else None).
    """

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        seed: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.options = options
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def fit(self, X: np.ndarray | Sequence[np.ndarray], y: Sequence) -> ArrayClassifier:
        """Train on sequences `X` and their labels `y` (strings or numbers, one per sequence);
        every sample trains or validates, none is held out for testing."""
        from pipeline.training.lightning_cli import make_cli

        sequences, labels = as_sequences(X), np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(sequences):
            raise UserError(
                f"y has shape {labels.shape} for {len(sequences)} sequences: give one label each."
            )
        check_classification_targets(labels)  # scikit-learn's ValueError for NaN, 0.5, ...
        classes = np.unique(labels)
        if len(classes) < 2:
            raise UserError(f"y holds {len(classes)} class(es) {classes.tolist()}; a classifier "
                            "needs two.")  # fmt: skip
        folders = _class_folders(classes)
        options = dict(self.options or {})
        given = sorted(set(options) & set(NOT_FOR_ARRAYS))
        if given:
            raise UserError(
                f"ArrayClassifier trains on X and y as they are, with no test split: leave out "
                f"{given} (`seqclass fit` takes them, for recordings)."
            )
        with tempfile.TemporaryDirectory(prefix="seqclass-") as tmp:
            root = Path(tmp) / "data"
            for i, (x, label) in enumerate(zip(sequences, labels, strict=True)):
                save_sequence(root / "train" / folders[label] / f"{i}.npz", x)
            options.setdefault("trainer.default_root_dir", str(Path(tmp) / "runs"))
            # after the options: a config among them cannot send the fit to other data
            args = ["fit", *_option_args(options, self.verbose), f"--data.root={root}",
                    "--data.test_fraction=0", f"--seed_everything={self.seed}"]  # fmt: skip
            try:
                with self._quiet(), warnings.catch_warnings():
                    hide_noisy_warnings()
                    # as_sequences named a channels-first X; fit's note would name the temp files
                    warnings.filterwarnings("ignore", "[^ ]+: the training files hold about")
                    cli = make_cli(args)
            except SystemExit:  # the option parser's, its message on stderr
                raise UserError(
                    f"seqclass fit refused the options {options} (see above)."
                ) from None
            checkpoint = cli.trainer.checkpoint_callback.best_model_path
            model = load_classifier(checkpoint)
        if model.hparams.feature_settings is not None or model.per_step:
            raise UserError(
                f"the options {options} preprocess or window X (a config's data.signal?), which "
                "predict would not do: leave that out; `seqclass fit` takes it, for recordings."
            )
        kept = Path(options["trainer.default_root_dir"]).is_dir()
        self.classes_, self.model_ = classes, model
        self.checkpoint_ = Path(checkpoint) if kept else None
        # the model's classes are its folders, sorted as strings: map them onto `classes_`
        place = {folders[label]: k for k, label in enumerate(classes)}
        self._order = [place[name] for name in model.class_names]
        return self

    def predict_proba(self, X: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities `[N, len(classes_)]`, columns in `classes_`' order."""
        check_is_fitted(self)
        model = self.model_
        sequences = as_sequences(X)
        expected = model.hparams.input_size
        for i, x in enumerate(sequences):
            if x.shape[1] != expected:
                raise UserError(
                    f"X[{i}] has {x.shape[1]} channels but the model was trained on {expected}."
                )
        items = [{"x": torch.from_numpy(x), "y": -1, "index": i} for i, x in enumerate(sequences)]
        device = checked_device(self.device)
        probs = head_probs(model, items, [len(x) for x in sequences], device).numpy()
        columns = np.empty_like(probs)
        columns[:, self._order] = probs
        return columns

    def predict(self, X: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The most probable class of each sequence, from `classes_`."""
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Without `verbose`: no progress, no notes, nothing on stdout; warnings still show."""
        if self.verbose:
            yield
            return
        loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _class_folders(classes: np.ndarray) -> dict[Any, str]:
    """A folder name per class: the label itself where every label makes a distinct, plain
    name (so that the checkpoint names its classes), else ``class_K``."""
    names = {label: str(label) for label in classes}
    plain = all(
        name.strip() == name and name not in ("", ".", "..") and not set(name) & set("/\\\0:")
        for name in names.values()
    )
    if plain and len(set(names.values())) == len(names):
        return names
    return {label: f"class_{k}" for k, label in enumerate(classes)}


def _option_args(options: dict[str, Any], verbose: bool) -> list[str]:
    """`--key=value` arguments; lists and mappings as YAML, as the command line takes them. A
    ``config`` comes first, so that the other options override what it sets."""
    quiet = {} if verbose else {"trainer.enable_progress_bar": False,
                                "trainer.enable_model_summary": False}  # fmt: skip
    ordered = sorted({**quiet, **options}.items(), key=lambda item: item[0] != "config")
    args = []
    for key, value in ordered:
        value = value.item() if isinstance(value, np.generic) else value  # from a numpy grid
        text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True)
        args.append(f"--{key.removeprefix('--')}={text.strip().removesuffix('...').strip()}")
    return args
