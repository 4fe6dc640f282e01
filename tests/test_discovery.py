from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.errors import UserError
from pipeline.data.discovery import assign_splits, class_names_of, discover, same_columns
from pipeline.data.sequence_files import SEQUENCE_SUFFIXES

from conftest import random_tree


def test_class_folders_are_split_stratified_and_reproducibly(tmp_path: Path) -> None:
    random_tree(tmp_path, {"a": 20, "b": 10})
    samples = discover(tmp_path, SEQUENCE_SUFFIXES)
    split = assign_splits(samples, 0.2, 0.1, seed=3)
    counts = Counter((s.split, s.label) for s in split)
    assert counts == {
        ("train", "a"): 14, ("val", "a"): 4, ("test", "a"): 2,
        ("train", "b"): 7, ("val", "b"): 2, ("test", "b"): 1,
    }  # fmt: skip
    assert split == assign_splits(samples, 0.2, 0.1, seed=3)
    assert split != assign_splits(samples, 0.2, 0.1, seed=4)
    assert len({s.path for s in split}) == 30


def test_split_folders_are_used_as_given(tmp_path: Path) -> None:
    random_tree(tmp_path / "train", {"a": 6, "b": 6})
    random_tree(tmp_path / "test", {"a": 2, "b": 3})
    split = assign_splits(discover(tmp_path, SEQUENCE_SUFFIXES), 0.25, 0.5, seed=0)
    counts = Counter(s.split for s in split)
    assert counts == {"train": 8, "val": 4, "test": 5}  # val from train; test kept as given


def test_manifest_with_and_without_split(tmp_path: Path) -> None:
    random_tree(tmp_path / "data", {"a": 3, "b": 3})
    rows = ["path,label,split"]
    rows += [f"data/a/{i}.npy,a,{'test' if i == 0 else 'train'}" for i in range(3)]
    rows += [f"data/b/{i}.npy,b," for i in range(3)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    samples = discover(tmp_path / "m.csv", SEQUENCE_SUFFIXES)
    assert Counter(s.split for s in samples) == {"train": 5, "test": 1}
    assert class_names_of(samples) == ["a", "b"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.mkdir(), "no samples found under"),
        (lambda root: None, "does not exist"),
        (lambda root: random_tree(root, {"only": 5}), "at least two class"),
        (lambda root: (random_tree(root, {"a": 5, "b": 5}), (root / "c").mkdir()), "class folder"),
        (lambda root: random_tree(root, {"a": 5, "b": 2}), "class 'b' has 2 training"),
    ],
)
def test_bad_layouts_raise_clear_errors(tmp_path: Path, make, message) -> None:
    root = tmp_path / "root"
    make(root)
    with pytest.raises(UserError, match=message):
        samples = discover(root, SEQUENCE_SUFFIXES)
        class_names_of(samples)
        assign_splits(samples, 0.2, 0.2, seed=0)


def test_manifest_pointing_at_missing_file(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path,label\nnope.npy,a\n")
    with pytest.raises(UserError, match="line 2: .*nope.npy does not exist"):
        discover(tmp_path / "m.csv", SEQUENCE_SUFFIXES)


def test_samples_in_a_subfolder_of_a_class_folder_are_named_not_left_out(tmp_path: Path) -> None:
    """`<class>/<subject>/*.npy` beside `<class>/*.npy`: those would be skipped unseen."""
    random_tree(tmp_path, {"a": 4, "b": 4})
    random_tree(tmp_path / ".ipynb_checkpoints", {"x": 1})  # hidden folders stay out of it
    random_tree(tmp_path / "b" / ".ipynb_checkpoints", {"x": 1})
    assert len(discover(tmp_path, SEQUENCE_SUFFIXES)) == 8
    random_tree(tmp_path / "b", {"subject_1": 2})
    with pytest.raises(
        UserError, match=r"b/subject_1/0\.npy: a sample file in a subfolder .*manifest"
    ):
        discover(tmp_path, SEQUENCE_SUFFIXES)


def test_csv_headers_agree_up_to_a_time_column(tmp_path: Path) -> None:
    """A time column is the time axis, not a channel: a file with one and a file without have
    the same channels; the same names in another order do not."""
    files = {"timed.csv": "Time (s),x,y\n0,1,2\n", "plain.csv": "x,y\n1,2\n",
             "swapped.csv": "y,x\n1,2\n", "data.npy": ""}  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert same_columns([tmp_path / "timed.csv", tmp_path / "plain.csv"]) == ["x", "y"]
    assert same_columns([tmp_path / "data.npy"]) is None
    with pytest.raises(
        UserError, match=r"swapped\.csv: has the channels y,x but .*timed\.csv has x,y"
    ):
        same_columns([tmp_path / "timed.csv", tmp_path / "data.npy", tmp_path / "swapped.csv"])


def test_a_data_root_that_is_one_sample_file_is_named_as_a_file(tmp_path: Path) -> None:
    sample = random_tree(tmp_path / "data", {"a": 1}) / "a" / "0.npy"
    with pytest.raises(UserError, match=r"0\.npy is a file; pass the folder .*seqclass classify"):
        discover(sample, SEQUENCE_SUFFIXES)
    with pytest.raises(UserError, match=r"nope does not exist"):
        discover(tmp_path / "nope", SEQUENCE_SUFFIXES)
