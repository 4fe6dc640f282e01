"""`seqclass decompose`: modes of recordings, a picture of them and a stationarity line each.

For every recording: ``OUT/<relative path>.npz`` (modes ``[C, K, T]``, residual ``[C, T]``,
centre frequencies ``[C, K]``, ``fs``, the channel names and their ADF results),
``OUT/<relative path>.png`` (each channel with its modes over time, and their spectra) and a row
per channel in ``OUT/decompose.csv`` with the augmented Dickey-Fuller test (statsmodels), as
VMD-LSTM studies report it.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from feature_extractors.signal import (
    RECORDING_SUFFIXES,
    Decomposition,
    Signal,
    SignalPreprocessing,
)
from feature_extractors.signal.methods import decompose
from pipeline.core.distributed import rank_and_world
from pipeline.data.cache import (
    ExtractionReport,
    Job,
    feature_path,
    gather_reports,
    plan,
    progress,
    write_failures,
)
from pipeline.data.discovery import discover_unlabelled
from pipeline.data.sequence_files import save_npz

MAX_PLOTTED_CHANNELS = 4


@dataclass
class Stationarity:
    """Augmented Dickey-Fuller test of one channel: a unit root is rejected when p < 0.05."""

    statistic: float
    p_value: float

    @property
    def stationary(self) -> bool:
        return self.p_value < 0.05


def adf_test(x: np.ndarray) -> Stationarity | None:
    """ADF test of a 1-D signal (automatic lag by AIC); None when statsmodels is not installed
    or the test is undefined (a constant channel: `decompose.csv` leaves its cells empty)."""
    try:
        from statsmodels.tsa.stattools import adfuller
    except ImportError:
        return None
    if np.ptp(x) == 0:
        return None
    with warnings.catch_warnings():  # rank-deficient lags on clean tones; return-type notices
        warnings.simplefilter("ignore")
        statistic, p_value, *_ = adfuller(x, autolag="AIC")
    return Stationarity(float(statistic), float(p_value))


def decompose_signal(signal: Signal, method: str, num_modes: int, **options) -> Decomposition:
    """Modes of every channel of `signal` (`vmd` or the EMD family), centre frequencies in Hz."""
    return decompose(signal.data, method, num_modes=num_modes, fs=signal.fs, **options)


def plot_decomposition(signal: Signal, result: Decomposition, *, title: str, path: Path) -> Path:
    """PNG: per channel, the signal and each mode over time (left) and their spectra (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = min(len(signal.data), MAX_PLOTTED_CHANNELS)
    k = result.modes.shape[1]
    fig, axes = plt.subplots(
        k + 1, 2 * channels, figsize=(6 * channels, 1.3 * (k + 1) + 0.8), squeeze=False,
        sharex="col",
    )  # fmt: skip
    t = signal.times
    freqs = np.fft.rfftfreq(len(t), 1 / signal.fs)
    for c in range(channels):
        rows = [signal.data[c], *result.modes[c].numpy()]
        labels = [signal.names[c]] + [
            f"mode {i} ({f:.3g} Hz)" for i, f in enumerate(result.center_frequencies[c].tolist())
        ]
        for r, (x, label) in enumerate(zip(rows, labels, strict=True)):
            wave_ax, spec_ax = axes[r, 2 * c], axes[r, 2 * c + 1]
            wave_ax.plot(t, x, lw=0.7, color="black" if r == 0 else f"C{r - 1}")
            wave_ax.set_ylabel(label, fontsize=8)
            spectrum = np.abs(np.fft.rfft(x)) / len(x)
            spec_ax.semilogy(
                freqs, spectrum + 1e-12, lw=0.7, color="black" if r == 0 else f"C{r - 1}"
            )
        axes[-1, 2 * c].set_xlabel("time (s)")
        axes[-1, 2 * c + 1].set_xlabel("frequency (Hz)")
        axes[0, 2 * c].set_title(f"{signal.names[c]}: signal and modes", fontsize=9)
        axes[0, 2 * c + 1].set_title("amplitude spectra", fontsize=9)
    shown = (
        ""
        if channels == len(signal.data)
        else f" (first {channels} of {len(signal.data)} channels)"
    )
    fig.suptitle(title + shown, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def decompose_recordings(
    root: str | Path,
    out: str | Path,
    *,
    preprocessing: SignalPreprocessing,
    method: str = "vmd",
    num_modes: int = 5,
    plot: bool = True,
    **options,
) -> tuple[list[dict], ExtractionReport]:
    """Decompose every recording under `root` after `preprocessing`.

    Results go through the feature cache: each recording is written once (atomically, keyed on
    the file and every setting), a rerun skips finished ones, and inside a process group each
    rank takes its share. Recordings that cannot be used are skipped and listed in
    ``OUT/failures.csv``. Returns the summary rows (on rank 0; empty elsewhere) and the report.
    """
    root, out = Path(root), Path(out)
    samples = discover_unlabelled(root, RECORDING_SUFFIXES)
    preprocessing = preprocessing.for_files([s.path for s in samples])
    settings = {
        "signal": preprocessing.settings(), "method": method, "num_modes": num_modes,
        "options": options, "plot": plot,
    }  # fmt: skip
    jobs, report = plan(samples, root, out, settings=settings)
    for job in progress(jobs, "recording", "decompose"):
        path = job.sample.path
        try:
            signal = preprocessing.process(path)
            result = decompose_signal(signal, method, num_modes, **options)
        except ValueError as err:  # unreadable recording, or one too short for these settings
            report.failed.append((path, str(err) if str(path) in str(err) else f"{path}: {err}"))
            continue
        if plot:
            title = f"{path.name}: {method.upper()}, K={num_modes}"
            plot_decomposition(signal, result, title=title, path=job.target.with_suffix(".png"))
        _save(job, signal, result)
        report.written.append(job.target)
        report.frames += signal.data.shape[-1]
    report = gather_reports(report)
    if rank_and_world()[0] != 0:
        return [], report
    write_failures(out, report.failed)
    failed = {p for p, _ in report.failed}
    done = sorted(
        (s.path, feature_path(s.path, root, out)) for s in samples if s.path not in failed
    )
    rows = [row for source, target in done for row in summary_rows(source, target)]
    if rows:
        _write_summary(out / "decompose.csv", rows)
    return rows, report


def _save(job: Job, signal: Signal, result: Decomposition) -> None:
    """Write a recording's modes, their centre frequencies and each channel's ADF test."""
    adf = [adf_test(channel) for channel in signal.data]
    save_npz(
        job.target,
        modes=result.modes.numpy(),
        residual=result.residual.numpy(),
        center_frequencies=result.center_frequencies.numpy(),
        iterations=result.iterations.reshape(-1).numpy(),
        converged=result.converged.reshape(-1).numpy(),
        fs=np.array(signal.fs),
        channels=np.array(signal.names),
        adf_statistic=np.array([np.nan if a is None else a.statistic for a in adf]),
        adf_p_value=np.array([np.nan if a is None else a.p_value for a in adf]),
        cache_key=np.array(job.key),
    )


def _write_summary(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summary_rows(source: Path, target: Path) -> list[dict]:
    """The ``decompose.csv`` rows of recording `source`, decomposed into `target` (.npz): a row
    per channel."""
    with np.load(target, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    rows = []
    for c, name in enumerate(arrays["channels"].tolist()):
        statistic, p_value = arrays["adf_statistic"][c], arrays["adf_p_value"][c]
        tested = not np.isnan(p_value)
        rows.append(
            {
                "path": str(source),
                "channel": name,
                "adf_statistic": f"{statistic:.4f}" if tested else "",
                "adf_p_value": f"{p_value:.4g}" if tested else "",
                "stationary": Stationarity(float(statistic), float(p_value)).stationary
                if tested
                else "",
                "center_frequencies_hz": " ".join(
                    f"{f:.4g}" for f in arrays["center_frequencies"][c].tolist()
                ),
                "iterations": int(arrays["iterations"][c]),
                "converged": bool(arrays["converged"][c]),
            }
        )
    return rows
