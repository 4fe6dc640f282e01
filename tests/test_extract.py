import csv
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main

from conftest import write_video


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
    with np.load(out / "a" / "2.npz") as npz:
        assert npz["features"].shape == (4, 1280)
        assert npz["frame_indices"].tolist() == [1, 4, 7, 10]  # uniform over 12 frames
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
        assert npz["features"].shape == (3, 1280)

    main(["fit", f"--data.root={out}", "--data.val_fraction=0.34", "--data.test_fraction=0",
          f"--trainer.default_root_dir={tmp_path / 'runs'}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=8"])  # fmt: skip
    assert (tmp_path / "runs" / "checkpoints" / "last.ckpt").is_file()


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
    extract(root, tmp_path / "two", "--num-workers", "0", "--devices", "2")
    assert "0 written, 6 up to date, 1 failed" in capfd.readouterr().out
