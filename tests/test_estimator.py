"""`pipeline.ArrayClassifier`: fit and predict on in-memory arrays, as scikit-learn does."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

import pipeline
from pipeline.apply.estimator import as_sequences
from pipeline.cli import main
from pipeline.core.errors import UserError

SMALL = {"model.hidden_size": 16, "model.kernel_features": 500, "trainer.max_epochs": 8}


def tones(per_class: dict, length: int = 80, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Two channels: a noisy tone whose frequency is the class's, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    X, y = [], []
    for label, frequency in per_class.items():
        for _ in range(14):
            tone = np.sin(2 * np.pi * frequency * rng.uniform(0.9, 1.1) * t + rng.uniform(0, 6))
            X.append(np.stack([tone + 0.3 * rng.standard_normal(length),
                               rng.standard_normal(length)], axis=1))  # fmt: skip
            y.append(label)
    order = rng.permutation(len(y))
    return [X[i] for i in order], np.array(y)[order]


def test_fit_and_predict_in_memory_with_labels_of_any_kind(tmp_path: Path) -> None:
    """Numbers as labels: `classes_` sorted as numbers, though the model's folders sort as
    strings ("10" < "3"); each probability column is its class's."""
    X, y = tones({3: 2.0, 10: 9.0, 5: 5.0})
    clf = pipeline.ArrayClassifier({**SMALL, "trainer.default_root_dir": str(tmp_path / "runs")})
    assert clf.fit(X[:30], y[:30]) is clf
    assert clf.classes_.tolist() == [3, 5, 10]
    assert clf.model_.class_names == ["10", "3", "5"]
    probs = clf.predict_proba(X[30:])
    assert probs.shape == (len(X) - 30, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with torch.inference_mode():  # the model's own order, column by column
        own = clf.model_(torch.from_numpy(X[30]).float()[None], torch.tensor([80])).softmax(-1)[0]
    np.testing.assert_allclose(probs[0], own[[1, 2, 0]].numpy(), atol=1e-5)
    assert clf.predict(X[30:]).tolist() == clf.classes_[probs.argmax(1)].tolist()
    assert clf.score(X[30:], y[30:]) >= 0.9  # tones three apart: an easy set
    assert clf.predict(np.stack(X[30:33])).shape == (3,)  # an [N, T, D] array as well

    # the run was kept: its checkpoint is a CLI checkpoint like any other
    assert clf.checkpoint_ is not None and clf.checkpoint_.is_file()
    np.save(tmp_path / "new.npy", X[30])
    main(["classify", str(tmp_path / "new.npy"), "--checkpoint", str(clf.checkpoint_),
          "--out", str(tmp_path / "c.csv")])  # fmt: skip
    assert f",{clf.predict(X[30:31])[0]}," in (tmp_path / "c.csv").read_text()


def test_one_channel_series_as_rows_and_labels_no_folder_can_hold() -> None:
    """An [N, T] array is N one-channel series; labels with slashes still come back as given;
    a fitted classifier pickles."""
    X, y = tones({"on/off": 2.0, "a\\b": 9.0})
    series = np.stack([x[:, 0] for x in X])  # [N, T]
    clf = pipeline.ArrayClassifier(SMALL).fit(series, y)
    assert clf.classes_.tolist() == ["a\\b", "on/off"]
    assert clf.model_.class_names == ["class_0", "class_1"] and clf.checkpoint_ is None
    assert set(clf.predict(series[:5])) <= {"a\\b", "on/off"}
    kept = pickle.loads(pickle.dumps(clf))  # as joblib.dump keeps a fitted estimator
    np.testing.assert_array_equal(kept.predict_proba(series[:5]), clf.predict_proba(series[:5]))


def test_a_config_sets_the_model_but_not_the_data(tmp_path: Path) -> None:
    """A config's model options apply, its data.root does not (X is the data); a config that
    preprocesses recordings (data.signal) is refused, as predict would not preprocess."""
    X, y = tones({"low": 2.0, "high": 9.0})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"hidden_size": 12, "kernel_features": 500},
                                      "data": {"root": str(tmp_path / "nowhere")}}))  # fmt: skip
    clf = pipeline.ArrayClassifier({"config": str(config), "trainer.max_epochs": 2}).fit(X, y)
    assert clf.model_.hparams.hidden_size == 12
    chain = tmp_path / "chain.yaml"
    chain.write_text(yaml.safe_dump({"data": {"signal": {"fs": 100, "steps": []}}}))
    with pytest.raises(UserError, match="preprocess or window X"):
        pipeline.ArrayClassifier({"config": str(chain), **SMALL}).fit(X, y)
    with pytest.raises(UserError, match=r"leave out \['data.signal'\]"):
        pipeline.ArrayClassifier({"data.signal": {"fs": 100}}).fit(X, y)


def test_scikit_learn_clones_and_cross_validates_it() -> None:
    X, y = tones({"low": 2.0, "high": 9.0})
    clf = pipeline.ArrayClassifier({**SMALL, "model.lr": np.float64(3e-3)}, seed=3)  # a grid's
    assert clone(clf).get_params() == clf.get_params()
    scores = cross_val_score(clf, np.stack(X), y, cv=2)
    assert scores.shape == (2,) and scores.min() >= 0.8


def test_an_array_that_looks_channels_first_is_named() -> None:
    """An [N, D, T] panel taken for [N, T, D] changes smoothly across its columns: a warning
    with the transpose; few steps of many channels (video features) pass quietly."""
    X, y = tones({"low": 2.0, "high": 9.0})
    panel = np.stack(X).transpose(0, 2, 1)  # 28 x 2 x 80
    with pytest.warns(UserWarning, match=r"\(28, 2, 80\), read as 2 steps of 80 channels.*"
                      r"X.transpose\(0, 2, 1\)"):  # fmt: skip
        assert len(as_sequences(panel)) == 28
    with pytest.warns(UserWarning) as caught:  # once: not again for the files fit writes
        pipeline.ArrayClassifier({**SMALL, "trainer.max_epochs": 1}).fit(panel, y)
    assert sum("smoothly" in str(w.message) for w in caught) == 1
    rng = np.random.default_rng(0)  # 12 frames of 256 features drifting from frame to frame
    frames = np.maximum(rng.normal(size=(20, 1, 256)), 0) + np.cumsum(
        0.1 * rng.normal(size=(20, 12, 256)), axis=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_sequences(panel.transpose(0, 2, 1))
        as_sequences(frames)


def test_bad_arrays_and_labels_are_named() -> None:
    X, y = tones({"low": 2.0, "high": 9.0})
    clf = pipeline.ArrayClassifier(SMALL)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.predict(X)
    nan = [x.copy() for x in X]
    nan[3][7, 1] = np.nan
    with pytest.raises(UserError, match=r"X\[3\]: contains NaN or Inf \(first at time step 7, "):
        clf.fit(nan, y)
    with pytest.raises(UserError, match=r"X\[2\] has 1 channels but X\[0\] has 2"):
        clf.fit([X[0], X[1], X[2][:, :1]], y[:3])
    with pytest.raises(UserError, match=r"y has shape \(27,\) for 28 sequences"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):  # not classes: scikit-learn's
        clf.fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(UserError, match=r"y holds 1 class\(es\) \['low'\]; a classifier needs two"):
        clf.fit(X, ["low"] * len(X))
    with pytest.raises(UserError, match=r"y holds 0 class\(es\)"):
        clf.fit([], [])
    with pytest.raises(UserError, match=r"X has shape \(28, 80, 2, 1\): give \[N, T, D\]"):
        clf.fit(np.stack(X)[..., None], y)
    panel = np.stack(X).transpose(0, 2, 1)[:, :1]  # aeon's univariate [N, 1, T]
    with pytest.raises(UserError, match=r"one step \(of 80 channels\).*X.transpose\(0, 2, 1\)"):
        clf.fit(panel, y)
    with pytest.raises(UserError, match="seqclass fit refused the options"):
        pipeline.ArrayClassifier({"model.hiden_size": 8}).fit(X, y)
    clf.fit(X, y)
    with pytest.raises(UserError, match=r"X\[0\] has 3 channels but the model was trained on 2"):
        clf.predict([np.ones((10, 3))])
    with pytest.raises(UserError, match="'cuda:99': .* pass cpu or a GPU this machine has"):
        clf.set_params(device="cuda:99").predict(X)
