import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from feature_extractors.video import (
    FrameSampling,
    MotionSettings,
    MotionStream,
    build_backbone,
    iter_frame_chunks,
)
from pipeline.cli import main
from pipeline.prepare import extract as extraction
from pipeline.prepare.sample_data import CAMERA_MOTIONS

from conftest import write_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def extract(root: Path, out: Path, *extra: str) -> None:
    main(["extract", str(root), "--out", str(out), "--backbone", "efficientnet_lite0",
          "--num-workers", "1", "--batch-size", "8", *extra])  # fmt: skip


def test_extract_writes_features_skips_bad_videos_resumes_and_feeds_fit(
    tmp_path: Path, capsys
) -> None:
    root, out = tmp_path / "videos", tmp_path / "features"
    for label in ("a", "b"):
        for i in range(3):
            write_video(root / label / f"{i}.avi", frames=10 + i)
    (root / "a" / "empty.mp4").write_bytes(b"")
    (root / "b" / "junk.avi").write_bytes(b"junk" * 100)

    extract(root, out, "--sampling", "uniform", "--sampling-value", "4")
    files = sorted(out.rglob("*.npz"))
    assert [p.relative_to(out).as_posix() for p in files] == [
        f"{c}/{i}.npz" for c in "ab" for i in range(3)
    ]
    with np.load(out / "a" / "2.npz") as npz:  # by default, appearance and motion
        assert npz["features"].shape == (4, 1280 + 29)
        assert npz["frame_indices"].tolist() == [1, 4, 7, 10]  # uniform over 12 frames
    settings = json.loads((out / "feature_settings.json").read_text())
    assert settings["motion"] == {"method": "dis", "grid": 3, "width": 160}
    with (out / "failures.csv").open() as fh:
        failed = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(fh)}
    assert failed.keys() == {"empty.mp4", "junk.avi"} and "zero-byte" in failed["empty.mp4"]
    assert "6 written, 0 up to date, 2 failed" in capsys.readouterr().out

    before = {p: p.stat().st_mtime_ns for p in files}
    extract(root, out, "--sampling", "uniform", "--sampling-value", "4")
    assert "0 written, 6 up to date" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in files}

    extract(root, out, "--sampling", "uniform", "--sampling-value", "3")  # changed setting
    assert "6 written, 0 up to date" in capsys.readouterr().out
    with np.load(out / "a" / "0.npz") as npz:
        assert npz["features"].shape == (3, 1280 + 29)

    main(["fit", f"--data.root={out}", "--data.val_fraction=0.34", "--data.test_fraction=0",
          f"--trainer.default_root_dir={tmp_path / 'runs'}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=8"])  # fmt: skip
    assert (tmp_path / "runs" / "checkpoints" / "last.ckpt").is_file()

    # the videos change: one moves to the other class, one is deleted, one breaks
    (root / "a" / "2.avi").rename(root / "b" / "moved.avi")
    (root / "b" / "1.avi").unlink()
    (root / "a" / "1.avi").write_bytes(b"junk" * 100)
    (out / "notes.npz").write_bytes(b"not ours")  # no cache key: left alone
    extract(root, out, "--sampling", "uniform", "--sampling-value", "3")
    printed = capsys.readouterr().out
    assert "1 written, 3 up to date, 3 failed" in printed
    assert "removed 3 stale feature file(s)" in printed and "a/2.npz" in printed
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz")) == [
        "a/0.npz",
        "b/0.npz",
        "b/2.npz",
        "b/moved.npz",
        "notes.npz",
    ]


def test_extract_exits_non_zero_when_nothing_could_be_read(tmp_path: Path) -> None:
    (tmp_path / "v" / "a").mkdir(parents=True)
    (tmp_path / "v" / "a" / "x.avi").write_bytes(b"nope")
    with pytest.raises(SystemExit) as exit_info:
        extract(tmp_path / "v", tmp_path / "f")
    assert exit_info.value.code == 1


def test_sharded_extraction_writes_each_video_once_with_the_same_features(
    tmp_path: Path, capfd
) -> None:
    root = tmp_path / "videos"
    for label in ("a", "b"):
        for i in range(3):
            write_video(root / label / f"{i}.avi", frames=6 + 2 * i)
    (root / "a" / "junk.avi").write_bytes(b"junk")
    extract(root, tmp_path / "one", "--num-workers", "0")
    extract(root, tmp_path / "two", "--num-workers", "0", "--devices", "2")
    out = capfd.readouterr().out
    assert out.count("6 written, 0 up to date, 1 failed") == 2  # the second: all ranks counted
    with (tmp_path / "two" / "failures.csv").open() as fh:
        assert [Path(r["path"]).name for r in csv.DictReader(fh)] == ["junk.avi"]
    for one in sorted((tmp_path / "one").rglob("*.npz")):
        with np.load(one) as a, np.load(tmp_path / "two" / one.relative_to(tmp_path / "one")) as b:
            np.testing.assert_allclose(a["features"], b["features"], rtol=1e-4, atol=1e-4)
    extract(root, tmp_path / "two", "--num-workers", "0")  # what two ranks wrote, one resumes
    assert "0 written, 6 up to date, 1 failed" in capfd.readouterr().out


def features_of(out: Path) -> dict[str, np.ndarray]:
    files = sorted(out.rglob("*.npz"))
    return {p.relative_to(out).as_posix(): np.load(p)["features"] for p in files}


def test_the_cnn_precision_is_recorded_and_keys_the_cache(tmp_path: Path, capsys) -> None:
    """float32 by default on every device; bf16-mixed only when asked, named in the settings,
    so that features of the two precisions never mix in one folder or one model."""
    root = tmp_path / "videos"
    for label, photo in (("a", data.coffee()), ("b", data.chelsea())):
        write_video(root / label / "0.avi", frames=4, image=photo)
    extract(root, tmp_path / "fp32")
    extract(root, tmp_path / "bf16", "--precision", "bf16-mixed")
    settings = {
        name: json.loads((tmp_path / name / "feature_settings.json").read_text())["backbone"]
        for name in ("fp32", "bf16")
    }
    assert "precision" not in settings["fp32"]  # as settings from before it was recorded
    assert settings["bf16"] == {**settings["fp32"], "precision": "bf16-mixed"}
    fp32, bf16 = features_of(tmp_path / "fp32"), features_of(tmp_path / "bf16")
    for name, features in fp32.items():
        assert not np.array_equal(features, bf16[name])  # bfloat16 really ran
        relative = np.linalg.norm(features - bf16[name], axis=1) / np.linalg.norm(features, axis=1)
        assert relative.max() < 0.06  # docs/videos.md's figure: 2-4% on photos
    capsys.readouterr()
    extract(root, tmp_path / "fp32", "--precision", "bf16-mixed")  # another precision: redone
    assert "2 written, 0 up to date" in capsys.readouterr().out


def test_features_of_the_float_resize_of_before_are_made_again_not_mixed(
    tmp_path: Path, capsys
) -> None:
    """A folder extracted before frames were resized as uint8 (its settings do not name the
    resize) is extracted again whole, and its settings still rebuild the float resize."""
    root, out = tmp_path / "videos", tmp_path / "features"
    for label, photo in (("a", data.coffee()), ("b", data.chelsea())):
        write_video(root / label / "0.avi", frames=4, image=photo)
    before = build_backbone("efficientnet_lite0", uint8_resize=False)
    extraction.extract_videos(root, out, backbone=before, sampling=FrameSampling(), num_workers=0)
    old_settings = json.loads((out / "feature_settings.json").read_text())
    assert "uint8_resize" not in old_settings["backbone"]  # as settings made before it
    assert not extraction.video_encoders(old_settings)[0].preprocess.uint8_resize
    old = features_of(out)
    capsys.readouterr()
    extract(root, out, "--motion", "none")  # appearance alone, as extracted before
    assert "2 written, 0 up to date" in capsys.readouterr().out
    settings = json.loads((out / "feature_settings.json").read_text())
    assert settings["backbone"] == {**old_settings["backbone"], "uint8_resize": True}
    for name, features in features_of(out).items():
        assert not np.array_equal(features, old[name])
        relative = np.linalg.norm(features - old[name], axis=1) / np.linalg.norm(old[name], axis=1)
        assert relative.max() < 0.1  # docs/videos.md: 3 % on photos, 7 % at most


def test_motion_descriptors_alone_and_beside_the_cnn(tmp_path: Path, capsys) -> None:
    root, photo = tmp_path / "videos", data.astronaut()[100:300, 50:450]  # texture to follow
    for label, step in (("left", -1), ("right", 1)):
        write_video(root / label / "0.avi", frames=9, step=step, image=photo)
    (root / "left" / "junk.avi").write_bytes(b"junk")
    every = ["--sampling", "every", "--sampling-value", "2"]
    extract(root, tmp_path / "motion", "--backbone", "none", "--motion", "dis", *every)
    assert "2 written, 0 up to date, 1 failed" in capsys.readouterr().out
    motion = features_of(tmp_path / "motion")
    assert motion["left/0.npz"].shape == (5, 29)
    dx = slice(0, 9)  # mean horizontal flow of the 3 x 3 cells
    assert np.all(motion["left/0.npz"][1:, dx] > 0.01) and np.all(
        motion["right/0.npz"][1:, dx] < -0.01
    )
    settings = json.loads((tmp_path / "motion" / "feature_settings.json").read_text())
    assert settings["backbone"] is None and settings["feature_dim"] == 29
    assert settings["motion"] == {"method": "dis", "grid": 3, "width": 160}

    extract(root, tmp_path / "cnn", "--motion", "none", *every)
    extract(root, tmp_path / "both", *every)  # the default: both
    cnn, both = features_of(tmp_path / "cnn"), features_of(tmp_path / "both")
    for name, features in both.items():  # CNN features first, then the motion descriptor
        assert features.shape == (5, 1280 + 29)
        np.testing.assert_allclose(features[:, :1280], cnn[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(features[:, 1280:], motion[name])

    capsys.readouterr()
    extract(root, tmp_path / "both", "--motion", "dis", "--motion-grid", "2", *every)
    assert "2 written, 0 up to date" in capsys.readouterr().out  # a new setting: a new cache key
    assert features_of(tmp_path / "both")["left/0.npz"].shape == (5, 1280 + 14)

    with pytest.raises(SystemExit) as exit_info:
        extract(root, tmp_path / "none", "--backbone", "none", "--motion", "none")
    assert exit_info.value.code == 2 and "--motion" in capsys.readouterr().err


def test_camera_motion_is_learnt_from_flow_on_unseen_photos(tmp_path: Path, capsys) -> None:
    videos, features, runs = tmp_path / "videos", tmp_path / "features", tmp_path / "runs"
    main(["sample-data", "camera-motion", str(videos), "--per-class", "12"])  # 12 train, 4 test
    assert sorted(p.name for p in (videos / "test").iterdir()) == sorted(CAMERA_MOTIONS)
    extract(videos, features, "--backbone", "none", "--motion", "dis", "--sampling", "uniform",
            "--sampling-value", "8")  # fmt: skip
    common = [f"--config={CONFIGS / 'camera_motion.yaml'}", f"--data.root={features}",
              f"--trainer.default_root_dir={runs}", "--trainer.enable_progress_bar=false",
              "--model.hidden_size=16"]  # fmt: skip
    main(["fit", *common])
    best = runs / "checkpoints" / "best.ckpt"
    main(["test", *common, f"--ckpt_path={best}"])
    metrics = json.loads(next(runs.glob("version_*/metrics.json")).read_text())
    # 18 or more of 20 videos of photos never seen in training (0.9 as float32 is below 0.9)
    assert round(metrics["accuracy"] * 20) >= 18, metrics

    main(["classify", str(videos / "test"), "--checkpoint", str(best), "--out",
          str(tmp_path / "classify.csv"), "--num-workers", "1"])  # fmt: skip
    with (tmp_path / "classify.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    hits = sum(Path(r["path"]).parent.name == r["predicted"] for r in rows)
    assert len(rows) == 20 and hits / 20 == pytest.approx(metrics["accuracy"])

    # exported, the model of motion alone takes the descriptors the printed recipe makes of
    # the decoded frames, and gives classify's probabilities
    main(["export", "--checkpoint", str(best), "--out", str(tmp_path / "m.ts")])
    info = {"seqclass.json": ""}
    module = torch.jit.load(tmp_path / "m.ts", _extra_files=info)
    info = json.loads(info["seqclass.json"])
    assert info["frame_size"] is None and info["inputs"].startswith("features [B, T, 29]")
    sampling = FrameSampling(**info["feature_settings"]["sampling"])
    motions = []
    for row in rows:  # a stream for each video: it keeps the frame before
        frames = np.concatenate([f for f, _ in iter_frame_chunks(row["path"], sampling, 64)])
        motions.append(torch.from_numpy(MotionStream(MotionSettings(**info["motion"]))(frames)))
    lengths = torch.tensor([len(m) for m in motions])
    with torch.no_grad():
        probs = module(torch.nn.utils.rnn.pad_sequence(motions, True), lengths).softmax(-1)
    listed = [[float(v) for k, v in r.items() if k.startswith("prob_")] for r in rows]
    torch.testing.assert_close(probs, torch.tensor(listed), atol=1e-5, rtol=0)


def test_a_class_folder_that_is_a_link_is_followed(tmp_path: Path, capsys) -> None:
    """As torchvision's ImageFolder does: the link's name is the class; a loop ends."""
    root, elsewhere = tmp_path / "videos", tmp_path / "elsewhere" / "clips"
    write_video(root / "a" / "0.avi", frames=4)
    write_video(elsewhere / "0.avi", frames=4)
    write_video(elsewhere / "1.avi", frames=4)
    (root / "b").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(root, target_is_directory=True)
    extract(root, tmp_path / "features", "--backbone", "none", "--motion", "dis")
    assert "3 written, 0 up to date, 0 failed" in capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path / "features").as_posix()
                     for p in (tmp_path / "features").rglob("*.npz"))  # fmt: skip
    assert written == ["a/0.npz", "b/0.npz", "b/1.npz"]


def test_videos_at_other_frame_rates_get_a_note_unless_sampled_by_time(
    tmp_path: Path, capsys
) -> None:
    """At 10 and 30 frames/s a step is a tenth or a thirtieth of a second: said, with the
    fix; sampling at a rate puts them on one time base, and says nothing."""
    write_video(tmp_path / "videos" / "a" / "slow.avi", frames=6, fps=10.0)
    write_video(tmp_path / "videos" / "a" / "fast.avi", frames=6, fps=30.0)
    for sampling, noted in (
        (["--sampling", "all"], True),
        (["--sampling", "fps", "--sampling-value", "5"], False),
    ):
        extract(tmp_path / "videos", tmp_path / sampling[1], "--backbone", "none", *sampling)
        err = capsys.readouterr().err
        assert ("the videos run at 10 to 30 frames/s (of 2 looked at)" in err) == noted, err


def test_decoding_processes_by_default_take_the_cores_a_gpu_leaves(monkeypatch) -> None:
    """Each worker preprocesses on one thread: beside a GPU, one per free core (up to 8, one
    core kept for the main process); beside a CNN on the CPU, 2, as the CNN needs the cores."""
    cores = set(range(16))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores)
    assert extraction.decode_workers("cpu") == 2
    assert extraction.decode_workers("cuda") == extraction.decode_workers("cuda:1") == 8
    cores = {0, 1, 2, 3}
    assert extraction.decode_workers("cuda") == 3
    cores = {0}
    assert extraction.decode_workers("cuda") == 1
    cores = set(range(16))
    monkeypatch.setattr(extraction, "rank_and_world", lambda: (1, 4))  # 4 ranks share them
    assert extraction.decode_workers("cuda") == 3
