"""Inputs that used to be misread or crash: each is handled, and nothing wrong is trained on."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from scipy.io import wavfile

from feature_extractors.signal import (
    RECORDING_SUFFIXES,
    SignalError,
    SignalPreprocessing,
    load_recording,
)
from pipeline.apply.explain import output_names
from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.batching import length_batches
from pipeline.data.cache import feature_path, write_failures
from pipeline.data.discovery import assign_splits, discover, discover_unlabelled
from pipeline.data.sequence_files import load_sequence, save_npz, save_sequence
from pipeline.prepare.signals import preprocess_recordings, signal_cache_dir

from conftest import random_tree, write_npy, write_video


def test_macos_resource_fork_files_are_not_samples(tmp_path: Path) -> None:
    root = random_tree(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "._0.npy").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    samples = discover(root, (".npy",))
    assert len(samples) == 6 and not any(s.path.name.startswith("._") for s in samples)
    assert len(discover_unlabelled(root, (".npy",))) == 6


def test_a_manifest_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    for name in ("x.npy", "y.npy"):
        write_npy(tmp_path / name, np.zeros((4, 2), dtype="f4"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\nx.npy,a\ny.npy,b\n", encoding="utf-8-sig")  # as Excel saves
    assert [s.label for s in discover(manifest, (".npy",))] == ["a", "b"]


def test_cache_files_follow_the_umask_so_others_can_read_them(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        save_npz(tmp_path / "features.npz", features=np.zeros((3, 2)))
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "features.npz").stat().st_mode)
    assert mode == 0o644  # mkstemp alone gives 0o600: unreadable by the other users of a cache


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["data/a/0.npy,a", "data/a/0.npy,b"], "lines 2 and 3: both list .*0.npy"),
        (["data/a/0.npy,a", "data/b/0.npy,b", "./data/a/../a/0.npy,a,test"], "lines 2 and 4"),
        (["data/a/0.npy,a", ",b"], "line 3: no path; fill every cell"),
        (["data/a/0.npy"], "line 2: no label"),
    ],
)
def test_a_manifest_row_without_cells_or_a_file_listed_twice_is_refused(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    random_tree(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "m.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=message):
        discover(tmp_path / "m.csv", (".npy",))


def test_a_manifest_group_stays_within_one_split(tmp_path: Path) -> None:
    """Twelve subjects with four recordings each (two per class): no subject in two splits."""
    random_tree(tmp_path / "data", {"a": 24, "b": 24})
    rows = [f"data/{c}/{i}.npy,{c},s{i // 2}" for c in "ab" for i in range(24)]
    (tmp_path / "m.csv").write_text("path,label,group\n" + "\n".join(rows) + "\n")
    for seed in range(3):
        samples = assign_splits(discover(tmp_path / "m.csv", (".npy",)), 0.15, 0.2, seed=seed)
        splits_of = {}
        for s in samples:
            splits_of.setdefault(s.group, set()).add(s.split)
        assert all(len(splits) == 1 for splits in splits_of.values())
        counts = Counter(s.split for s in samples)
        assert counts["test"] >= 4 and counts["val"] >= 4 and counts["train"] >= 24
        assert {s.label for s in samples if s.split == "test"} == {"a", "b"}


def test_classify_skips_and_names_files_with_another_channel_count(tmp_path: Path, capsys) -> None:
    root = random_tree(tmp_path / "data", {"a": 6, "b": 6}, channels=2)
    main(["fit", f"--data.root={root}", "--trainer.max_epochs=1", "--model.hidden_size=8",
          "--model.kernel_features=0", "--trainer.enable_progress_bar=false",
          f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    new = tmp_path / "new"
    write_npy(new / "good.npy", np.zeros((9, 2), dtype="f4"))
    write_npy(new / "one_channel.npy", np.zeros((9, 1), dtype="f4"))
    write_npy(new / "one_step.npy", np.zeros((1, 2), dtype="f4"))  # a row vector: 2 steps
    write_npy(new / "transposed.npy", np.zeros((2, 9), dtype="f4"))  # MATLAB's channels x time
    scipy.io.savemat(new / "good.mat", {"x": np.ones((9, 2))})  # a sequence file too
    main(["classify", str(new), "--checkpoint", str(tmp_path / "run/checkpoints/last.ckpt"),
          "--out", str(tmp_path / "p.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert "one_channel.npy: 1 channels per step, but the model was trained on 2" in err
    assert "one_step.npy holds a [1, 2] array, read as a row vector" in err
    assert "one_channel.npy holds" not in err
    assert "transposed.npy: 9 channels per step, but the model was trained on 2" in err
    assert "Its 2 rows are the model's channel count: if the rows are channels" in err
    assert err.count("Its 2 rows") == 1  # one_step.npy's note is the row vector's
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 3 and "good.mat" in rows[1] and "good.npy" in rows[2]


def write_csv_tree(root: Path, classes: dict[str, list[str]]) -> Path:
    """A class folder per key, a CSV file of 40 steps per header in its list."""
    rng = np.random.default_rng(0)
    for label, headers in classes.items():
        for i, header in enumerate(headers):
            (root / label).mkdir(parents=True, exist_ok=True)
            values = rng.normal(size=(40, 3)) + (label == "b")
            np.savetxt(root / label / f"{i}.csv", values, delimiter=",", header=header,
                       comments="")  # fmt: skip
    return root


@pytest.mark.parametrize("signal", [False, True], ids=["sequences", "recordings"])
def test_csv_files_with_their_columns_in_another_order_are_never_mixed(
    tmp_path: Path, capsys, signal: bool
) -> None:
    """The same names in another order would put one channel where another was trained: fit
    refuses such a folder, predict such new files, and classify skips them, each naming both
    headers; as sequence files and as recordings through a chain."""
    options = ["--data.signal={fs: 10}"] if signal else []
    run = ["--trainer.max_epochs=1", "--model.hidden_size=8", "--trainer.enable_progress_bar=false",
           f"--trainer.default_root_dir={tmp_path / 'run'}", *options]  # fmt: skip
    mixed = write_csv_tree(tmp_path / "mixed", {"a": ["x,y,z"] * 5 + ["z,y,x"], "b": ["x,y,z"] * 6})
    with pytest.raises(SystemExit):
        main(["fit", f"--data.root={mixed}", *run])
    err = capsys.readouterr().err
    assert "a/5.csv: has the channels z,y,x but" in err and "has x,y,z;" in err
    root = write_csv_tree(tmp_path / "data", {"a": ["x,y,z"] * 6, "b": ["x,y,z"] * 6})
    main(["fit", f"--data.root={root}", *run])
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    new = write_csv_tree(tmp_path / "new", {"a": ["x,y,z", "y,x,z"]})
    main(["classify", str(new), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "p.csv")])
    assert "a/1.csv: channels y,x,z, but the model was trained on x,y,z" in capsys.readouterr().err
    assert [r.split(",")[0] for r in (tmp_path / "p.csv").read_text().splitlines()[1:]] == [
        str(new / "a" / "0.csv")
    ]
    swapped = write_csv_tree(tmp_path / "swapped", {"a": ["y,x,z"] * 2})
    with pytest.raises(SystemExit):
        main(["predict", f"--data.predict_root={swapped}", f"--ckpt_path={checkpoint}", *run])
    assert "files have the channels y,x,z but the model was trained on x,y,z" in (
        capsys.readouterr().err
    )


def test_a_csv_stream_of_multi_stream_samples_with_another_header_stops_extract(
    tmp_path: Path, capsys
) -> None:
    """Camera and IMU per sample: one IMU file with its columns in another order is named
    before any video is decoded."""
    root, rng = tmp_path / "samples", np.random.default_rng(0)
    for folder, header in (
        ("a/s0", "x,y,z"),
        ("a/s1", "x,y,z"),
        ("b/s0", "x,y,z"),
        ("b/s1", "z,y,x"),
    ):
        write_video(root / folder / "camera.avi", frames=4)
        np.savetxt(root / folder / "imu.csv", rng.normal(size=(40, 3)), delimiter=",",
                   header=header, comments="")  # fmt: skip
    (tmp_path / "imu.yaml").write_text("fs: 10\n")
    with pytest.raises(SystemExit):
        main(["extract", str(root), "--out", str(tmp_path / "f"), "--backbone", "none",
              "--signal", f"imu={tmp_path / 'imu.yaml'}", "--num-workers", "1"])  # fmt: skip
    assert "b/s1/imu.csv: has the channels z,y,x but" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_a_chain_step_that_makes_nan_is_named_with_the_recording(tmp_path: Path) -> None:
    """Kurtosis of a flat window is 0/0: found where it happens, not later in the cache."""
    recording = tmp_path / "flat.npy"
    rng = np.random.default_rng(0)
    np.save(recording, np.stack([rng.normal(size=400), np.ones(400)], axis=1))  # [T, 2]
    chain = SignalPreprocessing(
        fs=100.0, steps=[{"detrend": {}}, {"window_stats": {"nperseg": 50, "stats": ["kurtosis"]}}]
    )
    with pytest.raises(SignalError, match=r"flat.npy: step 2 \(window_stats\) produced NaN"):
        chain.process(recording)


def test_two_recordings_with_one_cache_name_are_refused_with_both_named(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    write_npy(root / "a" / "r0.npy", np.zeros((50, 2), dtype="f4"))
    (root / "a" / "r0.csv").write_text("x,y\n" + "0,1\n" * 50)
    with pytest.raises(UserError, match=r"r0.csv and .*r0.npy would both be cached as"):
        preprocess_recordings(root, tmp_path / "cache", SignalPreprocessing(fs=100.0, steps=[]))


def test_explain_outputs_of_inputs_with_one_stem_keep_apart() -> None:
    sources = [Path("a/rec1.wav"), Path("b/rec1.wav"), Path("b/rec1.csv"), Path("c/rec2.wav")]
    names = output_names(sources)
    assert names == {
        Path("a/rec1.wav"): "a_rec1.wav",
        Path("b/rec1.wav"): "b_rec1.wav",
        Path("b/rec1.csv"): "b_rec1.csv",
        Path("c/rec2.wav"): "rec2",
    }
    assert len(set(output_names([Path("x/a/r.wav"), Path("y/a/r.wav")]).values())) == 2


@pytest.fixture
def small_run(tmp_path: Path) -> tuple[Path, Path]:
    """A class-folder tree with an explicit split and a checkpoint trained on it."""
    root = random_tree(tmp_path / "data", {"a": 6, "b": 6})
    main(["fit", f"--data.root={root}", "--trainer.max_epochs=1", "--model.hidden_size=8",
          "--model.kernel_features=0", "--trainer.enable_progress_bar=false",
          f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    return root, tmp_path / "run" / "checkpoints" / "last.ckpt"


def test_bad_checkpoints_and_an_empty_test_split_stop_with_one_line(
    small_run: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    root, _ = small_run
    (tmp_path / "truncated.ckpt").write_bytes(b"PK\x03\x04 cut short")
    cases = [
        (["test", f"--data.root={root}", f"--ckpt_path={tmp_path / 'gone.ckpt'}"],
         "gone.ckpt: no such file"),
        (["test", f"--data.root={root}", f"--ckpt_path={tmp_path / 'truncated.ckpt'}"],
         "truncated.ckpt: not a readable checkpoint"),
        (["fit", f"--data.root={root}", f"--ckpt_path={tmp_path / 'truncated.ckpt'}"],
         "truncated.ckpt: not a readable checkpoint"),
        (["predict", f"--data.root={root}", "--data.test_fraction=0",
          f"--ckpt_path={small_run[1]}"], "the test split is empty, so predict has nothing"),
        (["predict"], "no data given: pass --data.root DIR"),  # nor a checkpoint whose data
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            main([*args, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "BOGUS"], "unknown weights 'BOGUS' for googlenet; choose DEFAULT, random"),
        (["--sampling-value", "3"], "--sampling-value 3.0 needs --sampling every, uniform or fps"),
        (["--sampling", "every", "--sampling-value", "0.5"], "a whole number >= 1, not 0.5"),
        (["--max-frames", "0"], "max_frames must be at least 1"),
    ],
)
def test_extract_options_are_checked_when_parsed(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "0.avi").write_bytes(b"")
    with pytest.raises(SystemExit) as stop:
        main(["extract", str(tmp_path), "--out", str(tmp_path / "out"), *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_extract_names_a_folder_without_videos_before_it_seeks_the_cnns_weights(
    tmp_path: Path, capsys
) -> None:
    """GoogLeNet's weights are not here: the folder, the user's mistake, is named first."""
    write_npy(tmp_path / "a" / "0.npy", np.zeros((5, 2), "f4"))
    with pytest.raises(SystemExit) as stop:
        main(["extract", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "no files with suffix .mp4" in error and "1 .npy" in error


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("command", [
    ["classify", "x.npy", "--checkpoint", "m.ckpt"], ["explain", "x.npy", "--checkpoint", "m.ckpt"],
    ["extract", "videos", "--out", "features"], ["export", "--checkpoint", "m.ckpt", "--out", "m.ts"],
])  # fmt: skip
def test_a_device_this_machine_lacks_stops_each_command_in_one_line(
    command: list[str], capsys
) -> None:
    """Checked as the options are parsed, before a model, a video or a file is opened."""
    for device, reason in (("cuda", "'cuda': torch finds no CUDA GPU here"),
                           ("gpu", "'gpu' is not a torch device (cpu, cuda, cuda:N, mps)")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main([*command, "--device", device])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and f"argument --device: {reason}; pass --device cpu" in err


@pytest.mark.parametrize(("option", "message"), [
    ("--model.lr=-1", "--model.lr is -1.0; it must be above 0."),
    ("--model.num_layers=0", "--model.num_layers is 0; it must be 1 or more."),
    ("--model.kernel_features=-5", "--model.kernel_features is -5; it must be 0 or more."),
    ("--model.dropout=1", "--model.dropout is 1.0; it must be in [0, 1)."),
    ("--data.batch_size=0", "--data.batch_size is 0; it must be 1 or more."),
    ("--data.test_fraction=1.5", "--data.test_fraction is 1.5; it must be in [0, 1)."),
    ("--data.window_length=-2", "--data.window_length is -2.0; it must be above 0."),
])  # fmt: skip
def test_fit_options_out_of_range_stop_before_any_work(
    signal_root: Path, tmp_path: Path, capsys, option: str, message: str
) -> None:
    """A negative learning rate would train uphill, and no layers or a window of -2 s would
    be quietly read as something else: each stops in one line instead."""
    with pytest.raises(SystemExit) as stop:
        main(["fit", f"--data.root={signal_root}",
              f"--trainer.default_root_dir={tmp_path / 'run'}", option])  # fmt: skip
    assert stop.value.code == 2 and f"error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.parametrize(("command", "message"), [
    (["explain", "x.npy", "--checkpoint", "m.ckpt", "--steps", "0"], "--steps: 0: it must be 1 or more"),
    (["classify", "x.npy", "--checkpoint", "m.ckpt", "--num-workers", "-1"],
     "--num-workers: -1: it must be 0 or more"),
    (["sample-data", "signals", "out", "--per-class", "0"], "--per-class: 0: it must be 1 or more"),
    (["decompose", "x.wav", "--out", "o", "--num-modes", "two"],
     "--num-modes: 'two' is not a whole number"),
])  # fmt: skip
def test_counts_of_the_data_commands_are_checked_when_parsed(
    command: list[str], message: str, capsys
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(command)
    assert stop.value.code == 2 and f"argument {message}" in capsys.readouterr().err


def test_a_folder_without_the_files_asked_for_names_what_it_holds(tmp_path: Path) -> None:
    """Videos given to a model of sequence files (say): the error says what the folder holds."""
    for name in ("a/0.avi", "a/1.avi", "b/2.avi", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(UserError, match=r"suffix \.npy under .*; it holds 3 \.avi, 1 \.txt files"):
        discover_unlabelled(tmp_path, (".npy",))


def test_recordings_given_as_sequence_files_get_the_way_to_read_them(
    tmp_path: Path, capsys
) -> None:
    """`fit` on a folder of WAV class folders without a signal chain: one line that names the
    fix; with a chain, the same folder is found."""
    root = tmp_path / "recordings"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            wavfile.write(root / label / f"{i}.wav", 100, np.zeros((50, 1), "f4"))
    with pytest.raises(SystemExit) as stop:
        main(["fit", f"--data.root={root}", f"--trainer.default_root_dir={tmp_path}/runs"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "it holds 4 .wav files. Recordings are read" in error, error
    assert len(discover(root, RECORDING_SUFFIXES)) == 8  # what `--data.signal '{}'` reads
    (root / "a" / "clip.avi").write_bytes(b"")
    with pytest.raises(UserError, match=r"it holds .*Videos become sequence files with `seqc"):
        discover_unlabelled(root / "a", (".npy",))


def test_nan_in_a_val_or_test_file_stops_before_any_epoch(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    for split in ("train", "val", "test"):
        random_tree(root / split, {"a": 4, "b": 4}, seed=len(split))
    common = ["--trainer.max_epochs=1", "--model.hidden_size=8", "--model.kernel_features=0",
              "--trainer.enable_progress_bar=false", "--data.num_workers=1"]  # fmt: skip
    main(["fit", f"--data.root={root}", *common, f"--trainer.default_root_dir={tmp_path / 'm'}"])
    bad = np.ones((8, 2), dtype="f4")
    bad[5, 1] = np.nan
    write_npy(root / "val" / "b" / "bad.npy", bad)
    write_npy(root / "test" / "b" / "bad.npy", bad)
    for command, split in (("fit", "val"), ("test", "test")):
        ckpt = [f"--ckpt_path={tmp_path / 'm/checkpoints/last.ckpt'}"] if command == "test" else []
        with pytest.raises(SystemExit) as stop:
            main([command, f"--data.root={root}", *common, *ckpt,
                  f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
        assert stop.value.code == 2
        (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert error.startswith("error: ") and error.endswith(
            f"{split}/b/bad.npy: contains NaN or Inf (first at time step 5, channel 1). Clean or "
            "interpolate the recording, or leave it out."
        )  # one line, from the main process: no worker traceback
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before any epoch


def test_the_signal_cache_of_root_dot_sits_beside_the_data(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "recordings").mkdir()
    monkeypatch.chdir(tmp_path / "recordings")
    for root in (".", "./", str(tmp_path / "recordings")):
        assert signal_cache_dir(root, {"fs": 1}).parent == tmp_path / "recordings-cache"


def test_a_read_only_data_folder_caches_in_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "readonly" / "recordings"
    data.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    writable = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != data.parent and writable(p, mode))
    with pytest.warns(UserWarning, match="readonly/recordings-cache cannot be written"):
        folder = signal_cache_dir(data, {"fs": 1})
    assert folder.parent.parent == tmp_path / "home-cache" / "seqclass"
    assert folder.parent.name.startswith("recordings-")


@pytest.mark.parametrize("layout", ["beside classes", "files inside"])
def test_a_class_named_like_a_split_is_refused(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "data"
    if layout == "beside classes":
        random_tree(root, {"walk": 3, "run": 3, "test": 3})  # a class called test
        message = "has a test/ folder beside the class folders run, walk"
    else:
        random_tree(root / "train", {"walk": 3, "run": 3})
        write_npy(root / "train" / "loose.npy", np.zeros((5, 2), dtype="f4"))
        message = "has a train/ folder holding samples"
    with pytest.raises(UserError, match=message):
        discover(root, (".npy",))


def test_a_failure_of_any_kind_skips_only_its_own_recording(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "recordings"
    for name in ("ok", "huge"):
        write_npy(root / "a" / f"{name}.npy", np.zeros((50, 2), dtype="f4"))
    head = SignalPreprocessing.head

    def out_of_memory_on_huge(self, path):
        if Path(path).stem == "huge":
            raise MemoryError("VMD needs 80 GiB")
        return head(self, path)

    monkeypatch.setattr(SignalPreprocessing, "head", out_of_memory_on_huge)
    report = preprocess_recordings(root, tmp_path / "cache", SignalPreprocessing(fs=10.0, steps=[]))
    assert [p.name for p in report.written] == ["ok.npz"]
    ((path, reason),) = report.failed
    assert path.name == "huge.npy" and reason.endswith("huge.npy: MemoryError: VMD needs 80 GiB")
    assert "huge.npy" in (tmp_path / "cache" / "failures.csv").read_text()


def test_file_names_that_are_not_utf8_are_written_to_csv_as_they_are(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1 bytes on a UTF-8 system: a surrogate escape
    write_failures(tmp_path, [(tmp_path / name, "cannot read it")])
    assert b"caf\xe9.wav,cannot read it" in (tmp_path / "failures.csv").read_bytes()


def test_a_row_vector_is_one_channel_for_both_loaders(tmp_path: Path) -> None:
    row = np.arange(6, dtype="f4")[None, :]  # [1, 6]
    np.save(tmp_path / "row.npy", row)
    torch.save(torch.from_numpy(row), tmp_path / "row.pt")
    for name in ("row.npy", "row.pt"):
        assert load_sequence(tmp_path / name).shape == (6, 1)
    data, _ = load_recording(tmp_path / "row.npy", fs=10.0)
    assert data.shape == (1, 6)  # [C, T]
    save_sequence(tmp_path / "one_frame.npz", row)  # an extractor's one-step features
    assert load_sequence(tmp_path / "one_frame.npz").shape == (1, 6)
    (tmp_path / "one_step.csv").write_text("x,y,z\n1,2,3\n")  # named channels: rows are steps
    assert load_sequence(tmp_path / "one_step.csv").shape == (1, 3)
    assert load_recording(tmp_path / "one_step.csv", fs=10.0)[0].shape == (3, 1)


def test_evaluation_batches_keep_long_sequences_from_padding_the_short_ones() -> None:
    lengths = [100] * 20 + [50_000, 80_000] + [120] * 10
    batches = length_batches(lengths, batch_size=8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    budget = 8 * 100  # batch size x the median length
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert len(batch) <= 8 and (padded <= budget or len(batch) == 1)
    assert [20] in batches and [21] in batches  # the two long ones alone


def test_inputs_outside_the_root_are_cached_under_their_own_safe_names(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "cache"
    write_npy(root / "a" / "x.npy", np.zeros((5, 1), dtype="f4"))
    (root / "b").mkdir()
    (root / "b" / "link.npy").symlink_to(tmp_path / "elsewhere.npy")  # a link out of the root
    assert feature_path(root / "a" / "x.npy", root, out) == out / "a" / "x.npz"
    assert feature_path(root / "b" / "link.npy", root, out) == out / "b" / "link.npz"
    outside = [tmp_path / "one" / "r.wav", tmp_path / "two" / "r.wav"]  # `../one/r.wav` in a CSV
    targets = [feature_path(p, root / "manifest.csv", out) for p in outside]
    assert targets[0] != targets[1] and all(t.parent.parent == out / "_outside" for t in targets)


def test_a_decoder_process_that_dies_skips_its_video_alone(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import signal

    import pipeline.prepare.extract

    from conftest import write_video

    root = tmp_path / "videos"
    for i in range(5):
        write_video(root / "a" / f"{i}.avi", frames=9)
    (root / "a" / "2.avi").rename(root / "a" / "crash.avi")
    decode = pipeline.prepare.extract.iter_frame_chunks

    def dies_on_crash(path: Path, *args, **kwargs):  # runs in the forked decoder process
        for n, chunk in enumerate(decode(path, *args, **kwargs)):
            if path.stem == "crash" and n == 1:  # after a first chunk of frames went out
                os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
            yield chunk

    monkeypatch.setattr(pipeline.prepare.extract, "iter_frame_chunks", dies_on_crash)
    motion = ["--backbone", "none", "--motion", "dis", "--batch-size", "2"]
    main(["extract", str(root), "--out", str(tmp_path / "f"), "--num-workers", "2", *motion])
    assert "4 written, 0 up to date, 1 failed" in capsys.readouterr().out
    failures = (tmp_path / "f" / "failures.csv").read_text()
    assert "crash.avi" in failures and "decoder process died" in failures

    monkeypatch.undo()
    (root / "a" / "crash.avi").unlink()
    main(["extract", str(root), "--out", str(tmp_path / "g"), "--num-workers", "0", *motion])
    for name in ("0", "1", "3", "4"):  # no chunk of the dead run leaked into another video
        with (
            np.load(tmp_path / "f" / "a" / f"{name}.npz") as f,
            np.load(tmp_path / "g" / "a" / f"{name}.npz") as g,
        ):
            np.testing.assert_array_equal(f["features"], g["features"])
            np.testing.assert_array_equal(f["frame_indices"], g["frame_indices"])


def test_a_zero_byte_first_wav_stops_fit_with_one_line(tmp_path: Path, capsys) -> None:
    """The rate comes from the first readable WAV; the empty one is named like any bad file."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        for i in range(3):
            (tmp_path / "wavs" / label).mkdir(parents=True, exist_ok=True)
            wavfile.write(tmp_path / "wavs" / label / f"{i}.wav", 100, rng.normal(size=(80, 2)))
    (tmp_path / "wavs" / "a" / "0.wav").write_bytes(b"")  # sorts first
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--data.root={tmp_path / 'wavs'}", "--data.signal={steps: []}",
              f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "1 recording(s) could not be preprocessed" in err and "0.wav" in err
    assert "Traceback" not in err


def test_a_worker_lost_while_handing_over_frames_is_a_dead_worker(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """The loader may learn of a worker's death as a reset connection, mid-transfer: its
    videos are decoded again, and none is lost."""
    import pipeline.prepare.extract

    from conftest import write_video

    for i in range(4):
        write_video(tmp_path / "videos" / "a" / f"{i}.avi", frames=6)
    motion = ["--backbone", "none", "--motion", "dis", "--batch-size", "2"]
    main(["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "g"), "--num-workers", "0",
          *motion])  # fmt: skip
    real, lost = pipeline.prepare.extract.DataLoader, []

    class LosesAWorker(real):  # the first loader of two workers loses one after an item
        def __iter__(self):
            items = super().__iter__()
            yield next(items)
            if self.num_workers == 2 and not lost:
                lost.append(True)
                raise ConnectionResetError(104, "Connection reset by peer")
            yield from items

    monkeypatch.setattr(pipeline.prepare.extract, "DataLoader", LosesAWorker)
    main(["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "f"), "--num-workers", "2",
          *motion])  # fmt: skip
    assert lost and "4 written, 0 up to date, 0 failed" in capsys.readouterr().out
    for i in range(4):
        f, g = (np.load(tmp_path / run / "a" / f"{i}.npz")["features"] for run in ("f", "g"))
        np.testing.assert_array_equal(f, g)
