import csv
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

import pipeline
from feature_extractors.video import (
    FrameSampling,
    MotionSettings,
    MotionStream,
    backbone_from_spec,
    iter_frame_chunks,
)
from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.sequence_files import load_sequence

from conftest import write_video


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def video_run(tmp_path_factory) -> dict:
    """Two classes of generated videos, their Lite0 features and a model trained on them."""
    tmp = tmp_path_factory.mktemp("video_run")
    videos, features, runs = tmp / "videos", tmp / "features", tmp / "runs"
    for label, step in (("left", -1), ("right", 1)):
        for i in range(4):
            write_video(videos / label / f"{i}.avi", frames=8 + i, step=step)
    main(["extract", str(videos), "--out", str(features), "--backbone", "efficientnet_lite0",
          "--sampling", "every", "--sampling-value", "2", "--num-workers", "1"])  # fmt: skip
    main(["fit", f"--data.root={features}", "--data.val_fraction=0.25", "--data.test_fraction=0",
          f"--trainer.default_root_dir={runs}", "--trainer.max_epochs=2",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=8",
          "--model.bidirectional=true"])  # fmt: skip
    return {"videos": videos, "features": features, "ckpt": runs / "checkpoints" / "last.ckpt"}


def test_checkpoint_carries_the_extraction_settings(video_run: dict) -> None:
    ckpt = torch.load(video_run["ckpt"], weights_only=True)
    settings = json.loads((video_run["features"] / "feature_settings.json").read_text())
    assert ckpt["hyper_parameters"]["feature_settings"] == settings
    assert settings["backbone"]["name"] == "efficientnet_lite0"
    assert settings["sampling"] == {"mode": "every", "value": 2.0, "max_frames": None}


def test_classify_raw_videos_matches_predict_on_extracted_features(
    video_run: dict, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "classify.csv"
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    main(["classify", str(video_run["videos"]), str(tmp_path / "broken.avi"),
          "--checkpoint", str(video_run["ckpt"]), "--out", str(out), "--num-workers", "1"])  # fmt: skip
    captured = capsys.readouterr()
    assert "8 classified, 1 skipped" in captured.out and "broken.avi" in captured.err
    rows = read_rows(out)
    assert [Path(r["path"]).name for r in rows] == [f"{i}.avi" for _ in range(2) for i in range(4)]
    assert [r["label"] for r in rows] == ["left"] * 4 + ["right"] * 4

    main(["predict", f"--ckpt_path={video_run['ckpt']}", f"--data.predict_root={video_run['features']}",
          f"--trainer.default_root_dir={tmp_path / 'runs'}", "--trainer.logger=false",
          "--trainer.enable_progress_bar=false", "--trainer.callbacks+=PredictionWriter",
          f"--trainer.callbacks.filename={tmp_path / 'predict.csv'}"])  # fmt: skip
    predicted = read_rows(tmp_path / "predict.csv")
    for a, b in zip(rows, predicted, strict=True):
        probs_a = [float(a[k]) for k in a if k.startswith("prob_")]
        probs_b = [float(b[k]) for k in b if k.startswith("prob_")]
        np.testing.assert_allclose(probs_a, probs_b, atol=1e-5)


def _exported_and_pipeline_logits(videos: Path, features: Path, ckpt: Path, out: Path):
    """`seqclass export` of `ckpt`; then, for two videos of unequal length padded into one
    batch: the exported module's logits and the trained network's on the encoder's features
    (beside the motion descriptors that MotionStream computes, for a model that has them),
    after checking those inputs against the extracted feature files."""
    main(["export", "--checkpoint", str(ckpt), "--out", str(out)])
    extra = {"seqclass.json": ""}
    exported = torch.jit.load(str(out), _extra_files=extra)
    ckpt_settings = torch.load(ckpt, weights_only=True)["hyper_parameters"]["feature_settings"]
    info = json.loads(extra["seqclass.json"])
    assert info["class_names"] == ["left", "right"] and info["frame_size"] == 224
    assert info["device"] == "cpu"  # the default: traced for inputs on the CPU
    assert info["feature_settings"] == ckpt_settings
    # a trace keeps each convolution's TF32 switch: off, so a GPU export computes in float32
    convolutions = [n for n in exported.inlined_graph.nodes() if n.kind() == "aten::_convolution"]
    assert convolutions and not any(list(n.inputs())[-1].toIValue() for n in convolutions)
    backbone = backbone_from_spec(ckpt_settings["backbone"])
    sampling = FrameSampling("every", 2)
    clips, motions, expected = [], [], []
    for name in ("left/3.avi", "right/0.avi"):  # 6 and 4 sampled frames: padded batch of two
        frames = np.concatenate([f for f, _ in iter_frame_chunks(videos / name, sampling, 64)])
        clips.append(backbone.preprocess(torch.from_numpy(frames).permute(0, 3, 1, 2)))
        stored = load_sequence((features / name).with_suffix(".npz"))
        width = backbone.feature_dim
        np.testing.assert_allclose(
            backbone.model(clips[-1]).detach().numpy(), stored[:, :width], rtol=1e-4, atol=1e-4
        )
        if info["motion"] is not None:  # the documented way to compute them: the pipeline's
            motion = MotionStream(MotionSettings(**info["motion"]))(frames)
            np.testing.assert_array_equal(motion, stored[:, width:])
            motions.append(torch.from_numpy(motion))
        expected.append(torch.from_numpy(stored))
    lengths = torch.tensor([len(c) for c in clips])
    frames = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    motion = torch.nn.utils.rnn.pad_sequence(motions, batch_first=True) if motions else None
    from pipeline.apply.classify import load_classifier

    net = load_classifier(ckpt).net
    with torch.no_grad():  # the exported encoder's features: the pipeline's, up to rounding ...
        encoded = exported.encoder(frames.flatten(0, 1)).view(*frames.shape[:2], -1)
        for clip, stored, n in zip(encoded, expected, lengths.tolist(), strict=True):
            torch.testing.assert_close(clip[:n], stored[:, : clip.shape[-1]], rtol=1e-4, atol=1e-4)
        # ... and on them, the trained network's logits exactly (kernel features are thresholds,
        # so rounding-level differences in the features may move a logit by a step)
        if motion is None:
            return exported(frames, lengths), net(encoded, lengths)
        return exported(frames, lengths, motion), net(torch.cat([encoded, motion], -1), lengths)


def test_the_exported_default_model_takes_frames_and_motion_and_gives_the_pipelines_logits(
    video_run: dict, tmp_path: Path
) -> None:
    assert video_run["ckpt"].exists()
    got, reference = _exported_and_pipeline_logits(
        video_run["videos"], video_run["features"], video_run["ckpt"], tmp_path / "m.ts"
    )
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-5)


def test_an_exported_appearance_model_takes_frames_alone(video_run: dict, tmp_path: Path) -> None:
    features, runs = tmp_path / "features", tmp_path / "runs"
    main(["extract", str(video_run["videos"]), "--out", str(features), "--backbone",
          "efficientnet_lite0", "--motion", "none", "--sampling", "every", "--sampling-value", "2",
          "--num-workers", "1"])  # fmt: skip
    main(["fit", f"--data.root={features}", "--data.val_fraction=0", "--data.test_fraction=0",
          f"--trainer.default_root_dir={runs}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=4"])  # fmt: skip
    got, reference = _exported_and_pipeline_logits(
        video_run["videos"], features, runs / "checkpoints" / "last.ckpt", tmp_path / "m.ts"
    )
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-5)


def test_features_made_with_other_settings_are_refused(
    video_run: dict, tmp_path: Path, capsys
) -> None:
    other = tmp_path / "features"
    main(["extract", str(video_run["videos"]), "--out", str(other), "--backbone", "efficientnet_lite0",
          "--sampling", "uniform", "--sampling-value", "3", "--num-workers", "1"])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["test", f"--ckpt_path={video_run['ckpt']}", f"--data.root={other}",
              "--data.val_fraction=0", "--data.test_fraction=0.5",
              f"--trainer.default_root_dir={tmp_path / 'runs'}"])  # fmt: skip
    assert "features were made with" in capsys.readouterr().err


def test_classify_sequence_checkpoint_and_bad_checkpoint(
    signal_root: Path, tmp_path: Path, capsys
) -> None:
    runs = tmp_path / "runs"
    main(["fit", f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--model.hidden_size=8"])  # fmt: skip
    out = tmp_path / "p.csv"
    main(["classify", str(signal_root / "low"), "--checkpoint", str(runs / "checkpoints" / "last.ckpt"),
          "--out", str(out)])  # fmt: skip
    rows = read_rows(out)
    assert len(rows) == len(list((signal_root / "low").glob("*.npy")))
    # from Python: the same inputs, classes and probabilities
    result = pipeline.classify([signal_root / "low"], runs / "checkpoints" / "last.ckpt")
    assert [p.name for p in result.inputs] == [Path(r["path"]).name for r in rows]
    assert result.predicted == [r["predicted"] for r in rows]
    assert result.class_names == [k.removeprefix("prob_") for k in rows[0] if k.startswith("prob_")]
    with pytest.raises(UserError, match="'cuda:99': .* pass cpu or a GPU this machine has"):
        pipeline.classify(
            [signal_root / "low"], runs / "checkpoints" / "last.ckpt", device="cuda:99"
        )
    # exported, the model gives classify's probabilities on the same sequence files
    main(["export", "--checkpoint", str(runs / "checkpoints" / "last.ckpt"), "--out",
          str(tmp_path / "m.ts")])  # fmt: skip
    sequences = [torch.from_numpy(load_sequence(r["path"])) for r in rows]
    lengths = torch.tensor([len(s) for s in sequences])
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    with torch.no_grad():
        probs = torch.jit.load(tmp_path / "m.ts")(padded, lengths).softmax(-1)
    listed = torch.tensor([[float(v) for k, v in r.items() if k.startswith("prob_")] for r in rows])
    torch.testing.assert_close(probs, listed, atol=1e-5, rtol=0)
    (tmp_path / "bad.ckpt").write_bytes(b"junk")
    with pytest.raises(SystemExit):
        main(["classify", str(signal_root), "--checkpoint", str(tmp_path / "bad.ckpt")])
    assert "not a checkpoint of a trained model" in capsys.readouterr().err


def test_explain_draws_the_frames_the_model_saw(video_run: dict, tmp_path: Path) -> None:
    video = video_run["videos"] / "right" / "3.avi"  # 11 frames, every 2nd sampled: 6
    main(["explain", str(video), "--checkpoint", str(video_run["ckpt"]), "--out", str(tmp_path),
          "--num-workers", "0"])  # fmt: skip
    with np.load(tmp_path / "3.npz") as npz:
        assert npz["importance"].shape == (6,) and npz["attributions"].shape[0] == 6
    image = matplotlib.image.imread(tmp_path / "3.png")
    assert image.shape[1] > 300 and image[..., :3].std() > 0.05
