"""Reading recordings: formats, orientation, rates, NaN policy and the errors that name the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import edfio
import numpy as np
import pytest
import scipy.io
import scipy.io.wavfile
from numpy.testing import assert_allclose

from feature_extractors.signal import SignalError, load_recording
from feature_extractors.signal.io import channel_names, csv_columns, recorded_rate
from pipeline.core.errors import UserError
from pipeline.data.sequence_files import load_sequence

RNG = np.random.default_rng(0)
DATA = RNG.normal(size=(50, 3))  # [T, C] as stored


def test_int16_wav_is_scaled_and_keeps_its_rate(tmp_path: Path):
    pcm = (np.clip(DATA / 4, -1, 1) * 32767).astype(np.int16)
    scipy.io.wavfile.write(tmp_path / "a.wav", 8000, pcm)
    x, fs = load_recording(tmp_path / "a.wav")
    assert fs == 8000 and recorded_rate(tmp_path / "a.wav") == 8000
    assert x.shape == (3, 50)
    assert_allclose(x, pcm.T / 32768)


def test_wav_rate_must_match_the_data_rate(tmp_path: Path):
    scipy.io.wavfile.write(tmp_path / "a.wav", 8000, DATA.astype(np.float32))
    assert recorded_rate(tmp_path / "a.wav") == 8000  # float WAV header too
    with pytest.raises(SignalError, match=r"a\.wav: recorded at 8000 Hz .* 16000 Hz.*resample"):
        load_recording(tmp_path / "a.wav", fs=16000)
    assert load_recording(tmp_path / "a.wav", fs=16000, own_rate=True)[1] == 8000


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz", ".mat"])
def test_array_files_read_time_first(tmp_path: Path, suffix: str):
    path = tmp_path / f"a{suffix}"
    if suffix == ".csv":
        np.savetxt(path, DATA, delimiter=",", header="x,y,z", comments="")
    elif suffix == ".npy":
        np.save(path, DATA)
    elif suffix == ".npz":
        np.savez(path, acc=DATA)
    else:
        scipy.io.savemat(path, {"acc": DATA})
    x, fs = load_recording(path, fs=100)
    assert fs == 100
    assert_allclose(x, DATA.T)


@pytest.mark.parametrize("suffix", [".npy", ".mat"])
def test_channels_by_rows_are_refused_with_the_transpose_to_make(tmp_path: Path, suffix: str):
    """MATLAB's [channels x samples]: read time-first, 3 steps of 50 channels; refused."""
    path = tmp_path / f"a{suffix}"
    np.save(path, DATA.T) if suffix == ".npy" else scipy.io.savemat(path, {"acc": DATA.T})
    with pytest.raises(SignalError, match=r"a\.\w+: holds a \[3, 50\] array.*x\.T in NumPy"):
        load_recording(path, fs=100)


def write_timed_csv(path: Path, time_name: str, rate: float) -> Path:
    """DATA's channels after a time column at `rate` Hz (with a little jitter, as phones log)."""
    time = np.arange(len(DATA)) / rate + RNG.uniform(0, 0.1 / rate, len(DATA))
    np.savetxt(path, np.column_stack([time, DATA]), delimiter=",", comments="",
               header=f"{time_name},x,y,z")  # fmt: skip
    return path


@pytest.mark.parametrize("name", ["Time (s)", "time_ms", "t", "timestamp"])
def test_a_csv_time_column_is_the_time_axis_checked_against_fs(tmp_path: Path, name: str):
    """Never a channel; where the header names its unit, a rate it contradicts is refused."""
    per_second = 1000.0 if name == "time_ms" else 1.0
    path = write_timed_csv(tmp_path / "a.csv", name, 100 / per_second)
    x, fs = load_recording(path, fs=100)
    assert fs == 100
    assert_allclose(x, DATA.T)
    if name in ("Time (s)", "time_ms"):  # the file stores its rate, as a WAV does
        with pytest.raises(
            SignalError, match=r"a\.csv: its time column steps at (99\.\d+|100) Hz .* 50 Hz"
        ):
            load_recording(path, fs=50)
        own = recorded_rate(path)
        assert abs(own - 100) < 0.5  # the mean step over the jitter
        assert load_recording(path)[1] == own
        assert load_recording(path, fs=50, own_rate=True)[1] == own
    else:  # no unit: no rate to check against, and none to read
        assert_allclose(load_recording(path, fs=50)[0], DATA.T)
        assert recorded_rate(path) is None
        with pytest.raises(SignalError, match=r"a\.csv: this CSV stores no sample rate .*time_ms"):
            load_recording(path)


def test_a_channel_named_like_time_that_does_not_increase_stays_a_channel(tmp_path: Path):
    """`t` for temperature: not increasing, so not a time axis, and named as a channel."""
    np.savetxt(tmp_path / "a.csv", DATA, delimiter=",", header="t,h,p", comments="")
    assert_allclose(load_recording(tmp_path / "a.csv", fs=10)[0], DATA.T)
    assert csv_columns(tmp_path / "a.csv") == ["t", "h", "p"]


def test_a_time_column_rounded_to_repeat_some_stamps_is_still_the_time_axis(tmp_path: Path):
    """At 2 kHz, stamps rounded to the millisecond repeat every other one: still time, and
    its rate the mean step's."""
    stamps = np.round(np.arange(len(DATA)) * 0.5)
    np.savetxt(tmp_path / "a.csv", np.column_stack([stamps, DATA]), delimiter=",",
               header="time_ms,x,y,z", comments="")  # fmt: skip
    x, fs = load_recording(tmp_path / "a.csv")
    assert_allclose(x, DATA.T, atol=1e-12)
    assert abs(fs - 2000) < 50  # (T - 1) steps over the rounded span
    constant = np.column_stack([np.zeros(len(DATA)), DATA])  # a flat column named t: a channel
    np.savetxt(tmp_path / "b.csv", constant, delimiter=",", header="t,x,y,z", comments="")
    assert load_recording(tmp_path / "b.csv", fs=10)[0].shape == (4, len(DATA))
    assert csv_columns(tmp_path / "a.csv") == ["x", "y", "z"]
    assert csv_columns(tmp_path / "b.csv") == ["t", "x", "y", "z"]


def test_a_phyphox_export_with_quoted_names_keeps_its_time_axis_and_names(tmp_path: Path):
    path = tmp_path / "a.csv"
    header = '"Time (s)","Acceleration x (m/s^2)","y, filtered","z"'
    np.savetxt(path, np.column_stack([np.arange(len(DATA)) / 100, DATA]), delimiter=",",
               header=header, comments="")  # fmt: skip
    x, fs = load_recording(path)
    assert fs == 100 and x.shape == (3, len(DATA))
    assert csv_columns(path) == ["Acceleration x (m/s^2)", "y, filtered", "z"]
    (tmp_path / "b.csv").write_text('time_ms,"a"\n"0","1.5"\n"10","2.5"\n')  # quoted numbers
    x, fs = load_recording(tmp_path / "b.csv")
    assert fs == 100 and x.tolist() == [[1.5, 2.5]]


def test_a_time_column_that_falls_is_refused_with_its_line(tmp_path: Path):
    """Two sessions in one file: read as a channel, the stamps would be a ramp the model sees."""
    stamps = np.concatenate([np.arange(25), np.arange(25)]) * 10.0
    np.savetxt(tmp_path / "a.csv", np.column_stack([stamps, DATA]), delimiter=",",
               header="time_ms,x,y,z", comments="")  # fmt: skip
    with pytest.raises(SignalError, match=r"a\.csv, line 27: the time column 'time_ms' falls "
                                          r"from 240 to 0 .*rename the column"):  # fmt: skip
        load_recording(tmp_path / "a.csv", fs=100)
    with pytest.raises(UserError, match=r"a\.csv, line 27: the time column"):
        load_sequence(tmp_path / "a.csv")  # as a sequence file too
    flat = np.column_stack([np.full(len(DATA), 5.0), DATA])  # a unit says time: never a channel
    np.savetxt(tmp_path / "b.csv", flat, delimiter=",", header="time_ms,x,y,z", comments="")
    with pytest.raises(SignalError, match=r"b\.csv: the time column 'time_ms' holds 5 on every "
                                          r"row\. Write each row's time, or rename"):  # fmt: skip
        load_recording(tmp_path / "b.csv", fs=100)
    (tmp_path / "c.csv").write_text("time_ms,x\nnot,numbers\n")  # so its name alone tells
    assert csv_columns(tmp_path / "c.csv") == ["x"]


def test_an_excel_csv_with_a_byte_order_mark_keeps_its_time_axis(tmp_path: Path):
    """Excel's "CSV UTF-8" starts the header with a byte-order mark: still a time column."""
    path = write_timed_csv(tmp_path / "a.csv", "Time (s)", 100.0)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert_allclose(load_recording(path, fs=100)[0], DATA.T)
    with pytest.raises(
        SignalError, match=r"a\.csv: its time column steps at (99|100)\.?\d* Hz but .* 50 Hz"
    ):
        load_recording(path, fs=50)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("x,y\n1,2\n3,oops\n", r"a\.csv, line 3: non-numeric value .*header of column names"),
        ("x;y\n1;2\n", r"a\.csv, line 2: .*separated by ';': save the file with commas"),
        ("x,y\n1,2\n3\n", r"a\.csv, line 3: 1 values but the header names 2 columns"),
        ("x,y\n", r"a\.csv: has no rows of numbers under its header"),
    ],
)
def test_a_bad_csv_recording_names_its_line_and_the_fix(tmp_path: Path, content, message):
    (tmp_path / "a.csv").write_text(content)
    with pytest.raises(SignalError, match=message):
        load_recording(tmp_path / "a.csv", 10)


def test_matlab_row_vector_is_one_channel(tmp_path: Path):
    scipy.io.savemat(tmp_path / "a.mat", {"sig": DATA[:, 0][None, :]})
    x, _ = load_recording(tmp_path / "a.mat", fs=10)
    assert_allclose(x, DATA[:, :1].T)


def write_mat73(path: Path, **variables: np.ndarray) -> Path:
    """A MATLAB v7.3 file as MATLAB writes one: HDF5 after a 512-byte MAT header, each variable
    a dataset holding the array transposed, with its MATLAB class."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as mat:
        for name, value in variables.items():
            mat.create_dataset(name, data=value.T).attrs["MATLAB_class"] = np.bytes_("double")
        mat.create_dataset("label", data=np.frombuffer(b"a\0b\0", np.uint16)).attrs[
            "MATLAB_class"
        ] = np.bytes_("char")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: a test".ljust(116)
    with path.open("r+b") as fh:
        fh.write(header + b"\0" * 8 + b"\x00\x02IM")
    return path


def test_a_matlab_v73_file_is_read_through_h5py(tmp_path: Path, monkeypatch):
    """MATLAB's format for large variables (save -v7.3) is HDF5, which scipy does not read."""
    path = write_mat73(tmp_path / "a.mat", acc=DATA, gyro=2 * DATA[:, :1].T)  # a [1, T] row too
    assert_allclose(load_recording(path, 10, variable="acc")[0], DATA.T)
    assert_allclose(load_recording(path, 10, variable="gyro")[0], 2 * DATA[:, :1].T)
    with pytest.raises(SignalError, match=r"holds 2 variables \['acc', 'gyro'\]"):  # not 'label'
        load_recording(path, 10)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as where it is not installed
    with pytest.raises(SignalError, match=r"a\.mat: is a MATLAB v7\.3 .*install h5py"):
        load_recording(path, 10, variable="acc")


def test_mat_variable_is_chosen_by_name(tmp_path: Path):
    scipy.io.savemat(tmp_path / "a.mat", {"acc": DATA, "gyro": 2 * DATA})
    assert_allclose(load_recording(tmp_path / "a.mat", 10, variable="gyro")[0], 2 * DATA.T)
    with pytest.raises(SignalError, match=r"a\.mat: holds 2 variables \['acc', 'gyro'\]"):
        load_recording(tmp_path / "a.mat", 10)
    with pytest.raises(SignalError, match=r"no variable 'emg'; it holds \['acc', 'gyro'\]"):
        load_recording(tmp_path / "a.mat", 10, variable="emg")


def test_files_without_a_rate_need_fs(tmp_path: Path):
    np.save(tmp_path / "a.npy", DATA)
    with pytest.raises(SignalError, match=r"a\.npy: .npy files do not store a sample rate.*fs"):
        load_recording(tmp_path / "a.npy")


def test_nan_raises_by_default_and_interpolates_on_request(tmp_path: Path):
    data = DATA.copy()
    data[10, 1] = np.nan
    data[11, 1] = np.inf
    np.save(tmp_path / "a.npy", data)
    with pytest.raises(SignalError, match=r"a\.npy: 2 NaN/Inf .*sample 10, channel 1.*interpolate"):
        load_recording(tmp_path / "a.npy", 10)
    x, _ = load_recording(tmp_path / "a.npy", 10, nan_policy="interpolate")
    step = (DATA[12, 1] - DATA[9, 1]) / 3
    assert_allclose(x[1, 10:12], [DATA[9, 1] + step, DATA[9, 1] + 2 * step])
    assert_allclose(np.delete(x, [10, 11], axis=1), np.delete(DATA.T, [10, 11], axis=1))


def test_all_nan_channel_cannot_be_interpolated(tmp_path: Path):
    data = DATA.copy()
    data[:, 2] = np.nan
    np.save(tmp_path / "a.npy", data)
    with pytest.raises(SignalError, match="channel 2 holds no finite value"):
        load_recording(tmp_path / "a.npy", 10, nan_policy="interpolate")


def test_unreadable_and_misshapen_files_are_named(tmp_path: Path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(SignalError, match=r"bad\.npy: cannot read it"):
        load_recording(tmp_path / "bad.npy", 10)
    np.save(tmp_path / "cube.npy", np.zeros((4, 3, 2)))
    with pytest.raises(SignalError, match=r"cube\.npy: has shape"):
        load_recording(tmp_path / "cube.npy", 10)


def write_edf(path: Path, channels: dict[str, tuple[np.ndarray, float]], bdf: bool = False):
    """An EDF (or BDF) file of `channels`: label -> (samples in physical units, rate), with
    one EDF+ annotation, which is not a channel."""
    kind, signal = (edfio.Bdf, edfio.BdfSignal) if bdf else (edfio.Edf, edfio.EdfSignal)
    signals = [signal(x, fs, label=label, physical_dimension="uV")
               for label, (x, fs) in channels.items()]  # fmt: skip
    kind(signals, annotations=[edfio.EdfAnnotation(0.0, 1.0, "Sleep stage W")]).write(path)
    return path


EEG = np.random.default_rng(1).normal(
    0, 50, size=(2, 300)
)  # two channels of 3 s at 100 Hz, in microvolts


@pytest.mark.parametrize("bdf", [False, True], ids=["edf", "bdf"])
def test_edf_and_bdf_read_in_physical_units_with_their_rate_and_labels(tmp_path: Path, bdf):
    """The header, not the suffix, tells EDF (16 bits) from BDF (24 bits); either is read
    to within its resolution, annotations are not channels, and the labels name them."""
    path = write_edf(tmp_path / "a.edf", {"EEG Fpz-Cz": (EEG[0], 100), "EOG": (EEG[1], 100)}, bdf)
    x, fs = load_recording(path)
    span = EEG.max() - EEG.min()
    assert fs == 100 and recorded_rate(path) == 100 and x.shape == (2, 300)
    assert_allclose(x, EEG, atol=span / (2 ** (24 if bdf else 16) - 1))
    assert channel_names(path) == ["EEG Fpz-Cz", "EOG"]
    assert_allclose(load_recording(path, channels=["EOG", "EEG Fpz-Cz"])[0], x[::-1])
    with pytest.raises(SignalError, match=r"a\.edf: recorded at 100 Hz .* 250 Hz.*resample"):
        load_recording(path, fs=250)
    assert load_recording(path, fs=250, own_rate=True)[1] == 100


def test_edf_channels_of_several_rates_are_read_by_naming_those_of_one(tmp_path: Path):
    """A sleep study samples EEG at 100 Hz and temperature at 1 Hz: read together they would
    need a rate each, so the error lists the rates and the option that picks channels."""
    temperature = np.full(3, 36.5)
    path = write_edf(tmp_path / "psg.edf", {"EEG": (EEG[0], 100), "Temp": (temperature, 1),
                                             "EOG": (EEG[1], 100)})  # fmt: skip
    fix = r"100 Hz: EEG, EOG; 1 Hz: Temp\)\. Name channels of one rate .*channels '\[EEG, EOG\]'"
    with pytest.raises(SignalError, match=r"psg\.edf: its channels are sampled at different "
                                          r"rates \(" + fix):  # fmt: skip
        load_recording(path)
    with pytest.raises(SignalError, match="different rates"):
        recorded_rate(path)
    x, fs = load_recording(path, channels=["EOG", "EEG"])
    assert fs == 100 and recorded_rate(path, ["EOG", "EEG"]) == 100
    assert_allclose(x, EEG[::-1], atol=1.0)
    assert_allclose(load_recording(path, channels=["Temp"])[0], [temperature], atol=1e-3)
    with pytest.raises(SignalError, match=r"psg\.edf: has no channel 'EMG'; its channels are "
                                          r"EEG, Temp, EOG\. Name"):  # fmt: skip
        load_recording(path, channels=["EMG"])
    few = write_edf(tmp_path / "few.edf", {f"T{i}": (temperature[:2], 1) for i in range(5)})
    assert load_recording(few)[0].shape == (5, 2)  # named channels: no shape rule transposes them


def test_channels_are_picked_by_name_from_any_recording(tmp_path: Path):
    """A CSV's header names its channels, other arrays' are ch0, ch1, ...: `channels` reads
    those named, in its order."""
    np.savetxt(tmp_path / "a.csv", DATA, delimiter=",", header="x,y,z", comments="")
    np.save(tmp_path / "a.npy", DATA)
    assert_allclose(load_recording(tmp_path / "a.csv", 10, channels=["z", "x"])[0], DATA.T[[2, 0]])
    assert_allclose(load_recording(tmp_path / "a.npy", 10, channels=["ch1"])[0], DATA.T[[1]])
    assert channel_names(tmp_path / "a.npy") is None
    assert channel_names(tmp_path / "a.npy", ["ch1"]) == ["ch1"]
    with pytest.raises(SignalError, match=r"a\.csv: has no channel 'w'; its channels are x, y, z"):
        load_recording(tmp_path / "a.csv", 10, channels=["w"])


def test_bad_edf_files_are_named(tmp_path: Path):
    """Garbage, a file cut inside its header and a recording with gaps (EDF+D) each get an
    error naming the file; a file cut inside its data is read as far as it goes, with a
    warning naming it."""
    (tmp_path / "junk.edf").write_bytes(b"not an EDF file" * 20)
    with pytest.raises(SignalError, match=r"junk\.edf: cannot read it as EDF \(.*Fix or remove"):
        load_recording(tmp_path / "junk.edf")
    assert channel_names(tmp_path / "junk.edf") is None
    whole = write_edf(tmp_path / "whole.edf", {"EEG": (EEG[0], 100)}).read_bytes()
    (tmp_path / "header.edf").write_bytes(whole[:300])
    with pytest.raises(SignalError, match=r"header\.edf: cannot read it as EDF"):
        load_recording(tmp_path / "header.edf")
    gaps = whole.replace(b"+1\x14\x14", b"+7\x14\x14").replace(b"EDF+C", b"EDF+D")
    (tmp_path / "gaps.edf").write_bytes(gaps)  # the second data record starts at 7 s, not 1 s
    with pytest.raises(SignalError, match=r"gaps\.edf: is a discontinuous recording \(EDF\+D\)"):
        load_recording(tmp_path / "gaps.edf")
    (tmp_path / "cut.edf").write_bytes(whole[:-50])  # half its last data record
    with pytest.warns(
        UserWarning, match=r"cut\.edf: Incomplete data record.* truncated.*2 records"
    ):
        x, _ = load_recording(tmp_path / "cut.edf")
    assert 0 < x.shape[1] < EEG.shape[1]
