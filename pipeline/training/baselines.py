"""Reference classifiers on the same splits as `seqclass fit`, to put its accuracy in context.

- ``minirocket``: MiniRocket (Dempster et al., 2021): thousands of random dilated convolutions,
  each pooled to the proportion of positive values, into a ridge classifier;
- ``multirocket``: MultiRocket (Tan et al., 2022): MiniRocket's kernels on the series and its
  first difference, pooled four ways;
- ``hydra``: Hydra (Dempster et al., 2023): groups of competing random kernels, counted;
- ``multirocket-hydra``: both, side by side (Dempster et al., 2023);
- ``stats-lr``: per-channel summary statistics into a scikit-learn logistic regression.

The ROCKET family comes from aeon (``pip install seqclass[baselines]``). All train on the train
and val splits (none needs a validation set) and are scored on the test split. Sequences of
unequal length are right-padded with zeros to the longest for the ROCKET family.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# name -> aeon classifier (aeon.classification.convolution_based)
_ROCKETS = {
    "minirocket": "MiniRocketClassifier",
    "multirocket": "MultiRocketClassifier",
    "hydra": "HydraClassifier",
    "multirocket-hydra": "MultiRocketHydraClassifier",
}
METHODS = (*_ROCKETS, "stats-lr")


def summary_statistics(x: np.ndarray) -> np.ndarray:
    """Per channel of `x [T, D]`: mean, std, min, quartiles, max, skewness, kurtosis, mean
    absolute step and least-squares slope: `[11 * D]`."""
    x = np.asarray(x, dtype=np.float64)
    steps = np.arange(len(x), dtype=np.float64)
    flat = np.ptp(x, axis=0) == 0  # skewness and kurtosis of a constant are 0, not NaN
    with np.errstate(all="ignore"):
        features = [
            x.mean(0), x.std(0), *np.percentile(x, [0, 25, 50, 75, 100], axis=0),
            np.where(flat, 0.0, stats.skew(x, axis=0)),
            np.where(flat, 0.0, stats.kurtosis(x, axis=0)),
            np.abs(np.diff(x, axis=0)).mean(0) if len(x) > 1 else np.zeros(x.shape[1]),
            np.polyfit(steps, x, 1)[0] if len(x) > 1 else np.zeros(x.shape[1]),
        ]  # fmt: skip
    return np.concatenate(features)


def padded(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """`[N, D, length]`: each `[T, D]` sequence right-padded with zeros (or cut) to `length`."""
    out = np.zeros((len(sequences), sequences[0].shape[1], length), dtype=np.float32)
    for i, x in enumerate(sequences):
        out[i, :, : min(length, len(x))] = x[:length].T
    return out


@dataclass
class BaselineResult:
    """Class probabilities of the test samples `[N, K]` and the seconds fitting took."""

    probs: np.ndarray
    fit_seconds: float


def fit_and_predict(
    method: str,
    train_x: Sequence[np.ndarray],
    train_y: np.ndarray,
    *,
    test_x: Sequence[np.ndarray],
    num_classes: int,
    seed: int = 0,
) -> BaselineResult:
    """Train `method` on `train_x` (`[T, D]` arrays) with class indices `train_y`, then give
    the probabilities of `test_x`."""
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose {', '.join(METHODS)}")
    start = time.perf_counter()
    if method == "stats-lr":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(np.stack([summary_statistics(x) for x in train_x]), train_y)
        scores = model.predict_proba(np.stack([summary_statistics(x) for x in test_x]))
    else:
        try:
            from aeon.classification import convolution_based
        except ImportError:
            raise ImportError(
                f"{method} needs aeon: pip install 'seqclass[baselines]' (or pip install aeon)."
            ) from None
        length = max(len(x) for x in [*train_x, *test_x])
        model = getattr(convolution_based, _ROCKETS[method])(random_state=seed)
        model.fit(padded(train_x, length), train_y)
        scores = model.predict_proba(padded(test_x, length))
    probs = np.zeros((len(test_x), num_classes))
    probs[:, model.classes_] = scores  # classes missing from the train split get 0
    return BaselineResult(probs, time.perf_counter() - start)
