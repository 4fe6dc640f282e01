"""Synchronized video + sensor samples: discovery, per-stream caches, alignment, fused models."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.sequence_files import save_sequence
from pipeline.data.streams import StreamSample, discover_stream_samples, is_stream_layout
from pipeline.prepare.fusion import align
from pipeline.prepare.sample_data import make_fusion_dataset

CHAIN = Path(__file__).resolve().parents[1] / "configs" / "fusion" / "vibration.yaml"
MOTION = ["--backbone", "none", "--motion", "dis", "--sampling", "fps", "--sampling-value", "6",
          "--num-workers", "1", "--signal", str(CHAIN)]  # fmt: skip


def _stream(tmp: Path, name: str, times: np.ndarray, features: np.ndarray) -> Path:
    path = tmp / f"{name}.npz"
    save_sequence(path, features, times=times)
    return path


def test_streams_are_averaged_over_the_sparsest_streams_steps_within_their_common_span(
    tmp_path: Path,
) -> None:
    slow_t = np.arange(10) * 0.5  # 2 steps/s over 0-5 s: the time base
    fast_t = 1.0 + np.arange(40) * 0.1  # 10 steps/s over 1-5 s
    files = {
        "slow": _stream(tmp_path, "slow", slow_t, slow_t[:, None]),
        "fast": _stream(tmp_path, "fast", fast_t, np.stack([fast_t, -fast_t], 1)),
    }
    sample = StreamSample("a/s", {"slow": Path("slow.wav"), "fast": Path("fast.wav")}, "a")
    features, times, cut = align(sample, files, fill={}, order=["slow", "fast"])
    np.testing.assert_allclose(times, slow_t[2:])  # cut to 1-5 s
    np.testing.assert_allclose(features[:, 0], slow_t[2:])
    np.testing.assert_allclose(features[:, 1], slow_t[2:] + 0.2, atol=1e-6)  # 5 steps' mean
    np.testing.assert_allclose(features[:, 2], -features[:, 1], atol=1e-6)
    assert cut == pytest.approx(1.0)

    sample.offsets["fast"] = 4.9  # the recording starts as the video ends
    with pytest.raises(UserError, match="overlap for less than one slow step"):
        align(sample, files, fill={}, order=["slow", "fast"])
    sample.offsets["fast"] = 0.0
    filled, _, _ = align(
        sample, {"slow": files["slow"]}, fill={"fast": np.array([7.0, 8.0])}, order=["slow", "fast"]
    )
    assert filled.shape == (10, 3) and (filled[:, 1:] == [7.0, 8.0]).all()


def test_fused_samples_train_classify_and_read_their_streams_from_cache(
    tmp_path: Path, capsys
) -> None:
    data, features, runs = tmp_path / "data", tmp_path / "features", tmp_path / "runs"
    make_fusion_dataset(data, samples_per_class=5)
    assert is_stream_layout(data) and not is_stream_layout(CHAIN.parent)
    broken = data / "pan_left-healthy" / "pan_left-healthy_000"
    (broken / "vibration.wav").unlink()  # a sample missing a stream
    (data / "pan_right-healthy" / "pan_right-healthy_000" / "camera.avi").write_bytes(b"junk")
    main(["extract", str(data), "--out", str(features), *MOTION])
    printed = capsys.readouterr().out
    assert "18 fused, 0 up to date, 2 failed (camera 29-d + vibration 4-d" in printed
    with (features / "failures.csv").open() as fh:
        failed = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(fh)}
    assert failed["pan_left-healthy_000"] == "no vibration stream file"
    assert "camera stream" in failed["pan_right-healthy_000"]

    main(["extract", str(data), "--out", str(features), *MOTION])
    assert "0 fused, 18 up to date" in capsys.readouterr().out
    with np.load(features / "pan_left-bearing_fault" / "pan_left-bearing_fault_001.npz") as npz:
        assert npz["features"].shape[1] == 33 and npz["streams"].tolist() == list(
            ("camera", "vibration")
        )
        assert np.all(np.diff(npz["times"]) == pytest.approx(1 / 6))  # the video's 6 frames/s

    common = [f"--data.root={features}", f"--trainer.default_root_dir={runs}",
              "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false",
              "--model.hidden_size=8", "--model.kernel_features=840"]  # fmt: skip
    main(["fit", *common, "--model.stream_dropout=0.5"])
    best = runs / "checkpoints" / "best.ckpt"
    main(["test", *common, f"--ckpt_path={best}"])
    assert "test: accuracy=" in capsys.readouterr().out
    report = next(runs.glob("version_*/report.md")).read_text()
    assert "| camera | 29 |" in report and "| vibration | 4 |" in report  # each stream's settings
    main(["predict", *common, f"--ckpt_path={best}"])
    with next(runs.glob("version_*/predictions.csv")).open() as fh:
        predicted = list(csv.DictReader(fh))
    assert len(predicted) == 4  # the test split of the fused samples: one of each class
    assert all(Path(r["path"]).parent.name == r["label"] for r in predicted)
    main(["cv", "--folds", "2", "--out", str(tmp_path / "cv"), *common])
    assert json.loads((tmp_path / "cv" / "cv.json").read_text())["mean"]["val_acc"] >= 0

    main(["classify", str(data / "pan_left-healthy"), "--checkpoint", str(best), "--out",
          str(tmp_path / "c.csv"), "--num-workers", "1"])  # fmt: skip
    with (tmp_path / "c.csv").open() as fh:
        streams = {Path(r["path"]).name: r["streams"] for r in csv.DictReader(fh)}
    assert len(streams) == 5  # the sample without vibration too, on its camera alone
    assert streams["pan_left-healthy_000"] == "camera"
    assert streams["pan_left-healthy_001"] == "camera+vibration"

    main(["explain", str(data / "pan_right-bearing_fault"), "--checkpoint", str(best), "--out",
          str(tmp_path / "explain"), "--num-workers", "1", "--steps", "4"])  # fmt: skip
    with (tmp_path / "explain" / "explain.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    for row in rows:  # each step's importance split between the streams
        assert float(row["share_camera"]) + float(row["share_vibration"]) == pytest.approx(1, 1e-3)
    assert (tmp_path / "explain" / "pan_right-bearing_fault_000.png").is_file()

    renamed = tmp_path / "renamed" / "s"
    shutil.copytree(broken, renamed)
    (renamed / "camera.avi").rename(renamed / "video.avi")
    with pytest.raises(SystemExit):
        main(["classify", str(renamed.parent), "--checkpoint", str(best)])
    assert "['camera', 'vibration']" in capsys.readouterr().err  # both lists named


def test_without_stream_dropout_a_missing_stream_is_skipped_and_named(
    tmp_path: Path, capfd
) -> None:
    data, features, runs = tmp_path / "data", tmp_path / "features", tmp_path / "runs"
    make_fusion_dataset(data, samples_per_class=3)
    main(["extract", str(data), "--out", str(features), *MOTION])
    main(["extract", str(data), "--out", str(tmp_path / "sharded"), *MOTION, "--devices", "2"])
    assert capfd.readouterr().out.count("12 fused, 0 up to date, 0 failed") == 2  # all ranks
    for one in sorted(features.glob("*/*.npz")):
        with np.load(one) as a, np.load(tmp_path / "sharded" / one.relative_to(features)) as b:
            np.testing.assert_array_equal(a["features"], b["features"])
    main(["fit", f"--data.root={features}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
          "--model.hidden_size=8", "--model.kernel_features=0", "--model.stream_dropout=0",
          "--model.fusion=early", "--data.test_fraction=0"])  # fmt: skip
    sample = data / "pan_left-healthy" / "pan_left-healthy_000"
    (sample / "camera.avi").unlink()
    capfd.readouterr()
    main(["classify", str(data / "pan_left-healthy"), "--checkpoint",
          str(runs / "checkpoints" / "best.ckpt"), "--out", str(tmp_path / "c.csv")])  # fmt: skip
    out = capfd.readouterr()
    assert "2 classified, 1 skipped" in out.out and "no camera stream file" in out.err


def test_a_manifest_names_each_stream_and_its_offset(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    make_fusion_dataset(data, samples_per_class=2)
    rows = ["label,camera,vibration,split,offset_vibration"]
    for i, folder in enumerate(sorted(data.glob("*/*"))):
        label = folder.parent.name
        offset = "30" if i == 0 else "0.1"  # the first starts long after its video ends
        rows.append(f"{label},{folder.relative_to(data)}/camera.avi,"
                    f"{folder.relative_to(data)}/vibration.wav,{'test' if i % 2 else 'train'},"
                    f"{offset}")  # fmt: skip
    manifest = data / "fused.csv"
    manifest.write_text("\n".join(rows) + "\n")
    samples = discover_stream_samples(manifest)
    assert len(samples) == 8 and samples[1].offsets == {"camera": 0.0, "vibration": 0.1}
    main(["extract", str(manifest), "--out", str(tmp_path / "f"), *MOTION])
    printed = capsys.readouterr().out
    assert "7 fused" in printed and "1 failed" in printed and "manifest.csv" in printed
    assert "overlap for less than one" in (tmp_path / "f" / "failures.csv").read_text()
    with (tmp_path / "f" / "manifest.csv").open() as fh:
        listed = list(csv.DictReader(fh))
    assert len(listed) == 7 and {r["split"] for r in listed} == {"train", "test"}
    assert all((tmp_path / "f" / r["path"]).is_file() for r in listed)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["label,camera,offset_imu", "a,x/camera.avi,1"], "offset_imu names no stream column"),
        (["label,camera,offset_camera", "a,x/camera.avi,soon"], "'soon' is not seconds"),
        (["label,camera", "a,x/camera.avi", "a,x/camera.avi"], "lines 2 and 3"),
        (["label,camera", ",x/camera.avi"], "line 2: no label"),
    ],
)
def test_bad_stream_manifests_are_refused_with_the_line(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    manifest = tmp_path / "streams.csv"
    manifest.write_text("\n".join(rows) + "\n")
    assert is_stream_layout(manifest)
    for header in ("path,label", "file,start,end,label"):  # sample manifests, interval CSVs
        (tmp_path / "other.csv").write_text(header + "\n")
        assert not is_stream_layout(tmp_path / "other.csv")
    with pytest.raises(UserError, match=message):
        discover_stream_samples(manifest)
