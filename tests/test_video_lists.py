"""Video datasets as they come: UCF101 and HMDB51 split lists, and tables of clips of longer
videos (path,start,end,label; Kinetics' CSV), through `seqclass extract` and on to `fit`."""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.data.discovery import assign_splits, discover

from conftest import write_video

FPS = 10.0


def long_video(path: Path, seconds: float, seed: int = 0) -> Path:
    """A video (MJPG .avi, MPEG-4 .mp4) of noise panning a pixel per frame: every frame differs."""
    texture = np.random.default_rng(seed).integers(0, 255, (48, 96, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path),
        cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG")),
        FPS,
        (64, 48),
    )
    for t in range(int(seconds * FPS)):
        writer.write(np.roll(texture, -t, axis=1)[:, :64])
    writer.release()
    return path


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def extract(*args: str) -> None:
    main(["extract", *map(str, args), "--backbone", "none", "--num-workers", "1"])


def test_ucf101_lists_give_the_official_split_and_val_keeps_groups_whole(
    tmp_path: Path, capsys
) -> None:
    root, lists, out = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist", tmp_path / "f"
    names = {c: [f"v_{c}_g{g:02d}_c{k:02d}.avi" for g in range(1, 7) for k in (1, 2)]
             for c in ("Drumming", "HandstandPushups")}  # fmt: skip
    for c, files in names.items():
        for name in files:
            on_disk = name.replace("Handstand", "HandStand")  # UCF101's own mismatch in case
            write_video(root / c / on_disk, frames=6, step=1 if c == "Drumming" else -1)
    lists.mkdir()
    # fold 1: groups 1 and 2 are test, as UCF101 holds out whole groups
    train = [f"{c}/{n} {j + 1}" for j, c in enumerate(names) for n in names[c] if "_g0" in n
             and int(n.split("_g")[1][:2]) > 2]  # fmt: skip
    test = [f"{c}/{n}" for c in names for n in names[c] if int(n.split("_g")[1][:2]) <= 2]
    train.append("Drumming/v_Drumming_g07_c01.avi 1")  # listed, not on disk
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    (lists / "classInd.txt").write_text("1 Drumming\n2 HandstandPushups\n")

    extract(root, "--out", out, "--splits", lists, "--fold", "1")
    printed = capsys.readouterr().out
    assert "24 written, 0 up to date, 1 failed" in printed
    assert f"train with --data.root {out / 'split1.csv'}" in printed
    (failure,) = rows(out / "failures.csv")
    assert failure["path"].endswith("v_Drumming_g07_c01.avi") and "missing" in failure["reason"]
    manifest = rows(out / "split1.csv")
    assert len(manifest) == 24
    for row in manifest:
        group = int(row["group"][1:])
        assert row["split"] == ("test" if group <= 2 else "train"), row
        assert row["label"] in names and (out / row["path"]).is_file()

    samples = assign_splits(discover(out / "split1.csv", (".npz",)), 0.25, 0.0, seed=0)
    for group in {s.group for s in samples}:
        assert len({s.split for s in samples if s.group == group}) == 1  # whole groups
    assert {s.split for s in samples} == {"train", "val", "test"}

    runs = tmp_path / "runs"
    main(["fit", f"--data.root={out / 'split1.csv'}", "--data.val_fraction=0.25",
          f"--trainer.default_root_dir={runs}", "--trainer.max_epochs=2",
          "--trainer.enable_progress_bar=false", "--model.hidden_size=8"])  # fmt: skip
    main(["test", f"--data.root={out / 'split1.csv'}", f"--trainer.default_root_dir={runs}",
          f"--ckpt_path={runs / 'checkpoints' / 'last.ckpt'}"])  # fmt: skip
    assert "on 8 samples" in capsys.readouterr().out  # the official test split: groups 1-2


def test_hmdb51_lists_leave_out_the_unused_videos(tmp_path: Path) -> None:
    root, lists, out = tmp_path / "hmdb51", tmp_path / "splits", tmp_path / "f"
    lists.mkdir()
    for c in ("wave", "clap"):
        lines = []
        for i, code in enumerate((1, 1, 1, 2, 0)):
            name = f"Film_{i // 2}_{c}_u_cm_np1_fr_med_{i}.avi"
            write_video(root / c / name, frames=5)
            lines.append(f"{name} {code}")
        (lists / f"{c}_test_split1.txt").write_text(" \n".join(lines) + " \n")
    extract(root, "--out", out, "--splits", lists)
    manifest = rows(out / "split1.csv")
    assert sorted((r["label"], r["split"]) for r in manifest) == sorted(
        [(c, s) for c in ("wave", "clap") for s in ("train", "train", "train", "test")]
    )
    assert {r["group"] for r in manifest} == {"Film_0", "Film_1"}  # the clips' source films
    assert not (out / "failures.csv").exists()


def test_clips_of_a_long_video_are_decoded_by_seeking_and_bad_rows_are_reported(
    tmp_path: Path, capsys
) -> None:
    video = long_video(tmp_path / "data" / "match.avi", seconds=10)
    table = tmp_path / "data" / "clips.csv"
    table.write_text(
        "path,start,end,label,split\n"
        "match.avi,1.0,3.0,serve,train\n"
        "match.avi,2.5,4.0,rally,train\n"  # overlaps the first: clips are samples
        "match.avi,6.0,9.5,rally,test\n"
        "match.avi,5.0,5.0,serve,train\n"  # empty
        "match.avi,9.0,12.0,serve,train\n"  # past the end (10 s)
        "gone.avi,0.0,1.0,serve,train\n"  # no such file
    )
    out = tmp_path / "f"
    extract(table, "--out", out)
    printed = capsys.readouterr().out
    assert "3 written, 0 up to date, 3 failed" in printed
    reasons = {r["reason"].split(": ", 1)[-1] for r in rows(out / "failures.csv")}
    assert any("empty" in r for r in reasons) and any("not inside the video" in r for r in reasons)
    assert any("does not exist" in r for r in reasons)
    manifest = rows(out / "manifest.csv")
    assert [(r["label"], r["split"], r["group"]) for r in manifest] == [
        ("serve", "train", "match.avi"), ("rally", "train", "match.avi"),
        ("rally", "test", "match.avi"),
    ]  # fmt: skip

    extract(video.parent, "--out", tmp_path / "whole")  # the whole video, from its first frame
    with np.load(tmp_path / "whole" / "match.npz") as npz:
        whole, whole_indices = npz["features"], npz["frame_indices"]
    for row, (start, end) in zip(manifest, [(1.0, 3.0), (2.5, 4.0), (6.0, 9.5)], strict=True):
        with np.load(out / row["path"]) as npz:
            features, indices = npz["features"], npz["frame_indices"]
        assert indices.tolist() == list(range(int(start * FPS), int(end * FPS)))
        # the same frames as decoded from the start: the same motion, after the clip's first
        # frame (which has no predecessor in the clip)
        np.testing.assert_array_equal(
            features[1:], whole[np.searchsorted(whole_indices, indices)][1:]
        )
        assert not features[0].any()

    extract(table, "--out", out)
    assert "0 written, 3 up to date, 3 failed" in capsys.readouterr().out
    table.write_text(table.read_text().replace("6.0,9.5", "6.0,9.0"))
    extract(table, "--out", out)
    assert "1 written, 2 up to date" in capsys.readouterr().out  # keyed on the interval


def test_a_kinetics_table_finds_videos_by_their_youtube_id(tmp_path: Path) -> None:
    data = tmp_path / "kinetics"
    long_video(data / "videos" / "abc123XYZ_0.mp4", seconds=4, seed=1)
    long_video(data / "videos" / "zzz999.avi", seconds=1)
    (data / "kinetics.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "juggling,abc123XYZ_0,0,2,train\n"
        "juggling,abc123XYZ_0,2,4,validate\n"
        "dancing,zzz999,0,1,train\n"
        "dancing,missing_id,0,1,train\n"
    )
    out = tmp_path / "f"
    extract(data / "kinetics.csv", "--out", out)
    manifest = rows(out / "manifest.csv")
    assert [(r["label"], r["split"]) for r in manifest] == [
        ("juggling", "train"),
        ("juggling", "val"),
        ("dancing", "train"),
    ]
    (failure,) = rows(out / "failures.csv")
    assert "missing_id" in failure["path"] and "no video named missing_id" in failure["reason"]


def test_split_lists_of_another_fold_are_named(tmp_path: Path) -> None:
    write_video(tmp_path / "v" / "a" / "x.avi", frames=4)
    (tmp_path / "lists").mkdir()
    with pytest.raises(SystemExit):
        extract(tmp_path / "v", "--out", tmp_path / "f", "--splits", tmp_path / "lists",
                "--fold", "2")  # fmt: skip
