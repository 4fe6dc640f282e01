from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from pipeline.core.errors import UserError
from pipeline.data.sequence_files import (
    load_sequence,
    row_vector_note,
    save_sequence,
    sequence_shape,
)

ARRAY = np.arange(12, dtype=np.float32).reshape(4, 3)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".mat", ".pt", ".csv"])
def test_every_format_loads_the_same_array(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, ARRAY)
    elif suffix == ".npz":
        np.savez(path, features=ARRAY, frame_indices=np.arange(4))
    elif suffix == ".mat":
        scipy.io.savemat(path, {"features": ARRAY, "label": "a"})
    elif suffix == ".pt":
        torch.save({"features": torch.from_numpy(ARRAY)}, path)
    else:
        path.write_text("a,b,c\n" + "\n".join(",".join(map(str, row)) for row in ARRAY) + "\n")
    np.testing.assert_array_equal(load_sequence(path), ARRAY)
    assert sequence_shape(path) == (4, 3)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_csv_time_column_is_not_a_channel(tmp_path: Path, encoding: str) -> None:
    """Phone and logger exports start with time; it would be a ramp channel (or a date).
    Excel's "CSV UTF-8" starts with a byte-order mark, which is not part of the name."""
    rows = np.column_stack([1.7e9 + np.arange(4) * 0.01, ARRAY])
    path = tmp_path / "x.csv"
    np.savetxt(path, rows, delimiter=",", header="timestamp,a,b,c", comments="", fmt="%.4f",
               encoding=encoding)  # fmt: skip
    np.testing.assert_array_equal(load_sequence(path), ARRAY)
    assert sequence_shape(path) == (4, 3)


def test_one_dimensional_array_is_one_channel(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(5.0))
    assert load_sequence(tmp_path / "x.npy").shape == (5, 1)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".mat", ".pt"])
def test_a_row_vector_is_one_channel_in_every_reader(tmp_path: Path, suffix: str) -> None:
    """MATLAB's `[1, N]` habit: N steps of one channel, by the header-only shape reader too."""
    row = np.arange(30, dtype=np.float32)[None]
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, row)
    elif suffix == ".npz":
        np.savez(path, row)
    elif suffix == ".mat":
        scipy.io.savemat(path, {"x": np.arange(30.0)})  # MATLAB keeps a vector as [1, N]
    else:
        torch.save(torch.from_numpy(row), path)
    assert load_sequence(path).shape == sequence_shape(path) == (30, 1)
    assert "holds a [1, 30] array, read as a row vector" in row_vector_note(path)
    np.savez(tmp_path / "step.npz", features=row)  # the way to one step of 30 channels
    assert load_sequence(tmp_path / "step.npz").shape == (1, 30)
    assert row_vector_note(tmp_path / "step.npz") == ""


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tensors_load_as_float32(tmp_path: Path, dtype: torch.dtype) -> None:
    torch.save({"features": torch.from_numpy(ARRAY).to(dtype)}, tmp_path / "x.pt")
    torch.save(torch.from_numpy(ARRAY).to(dtype), tmp_path / "bare.pt")
    for name in ("x.pt", "bare.pt"):
        loaded = load_sequence(tmp_path / name)
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, ARRAY)  # small integers: exact in half precision


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "x.npz"
    save_sequence(path, ARRAY, frame_indices=np.array([0, 2, 4, 6]))
    np.testing.assert_array_equal(load_sequence(path), ARRAY)
    assert [p.name for p in path.parent.iterdir()] == ["x.npz"]  # no temporary left


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nan.npy", np.array([[1.0], [np.nan]]), "NaN or Inf"),
        ("inf.npy", np.array([[np.inf, 1.0]]), "NaN or Inf"),
        ("empty.npy", np.zeros((0, 3)), "empty"),
        ("cube.npy", np.zeros((2, 2, 2)), "2-D"),
        ("text.npy", np.array([["a"]]), "not numbers"),
        ("garbage.npy", b"not a numpy file", "cannot read"),
        ("zero.npy", b"", "zero-byte"),
        ("bad.csv", "a,b\n1,2\n3,x\n", "line 3: non-numeric"),
        ("ragged.csv", "a,b\n1,2\n3\n", "line 3: 1 values"),
        ("keys.npz", None, "name the sample array 'features'"),
        ("keys.mat", None, r"holds arrays \['a', 'b'\]; name the sample array 'features'"),
        ("cells.mat", {"x": np.array([[1.0], "a"], dtype=object)}, "not numbers"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path: Path, name, content, message) -> None:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        scipy.io.savemat(path, content)
    elif path.suffix == ".mat":
        scipy.io.savemat(path, {"a": ARRAY, "b": ARRAY})
    else:
        np.savez(path, a=ARRAY, b=ARRAY)
    with pytest.raises(UserError, match=message) as err:
        load_sequence(path)
    assert str(path) in str(err.value)
