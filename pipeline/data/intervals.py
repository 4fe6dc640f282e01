"""Long recordings labelled by time intervals, cut into sliding windows.

An interval CSV has the header ``file,start,end,label`` (seconds; files relative to the CSV).
Each processed recording has the time of every step, so labels land on the right steps even
after resampling or spectrogram framing. Windows of `length` seconds every `hop` seconds become
samples: labelled by the class covering most of the window (sequence-to-label), or keeping the
label of every step (sequence-to-sequence; its val and test windows do not overlap, so every
step is scored once). Splits are chronological within each recording
(train, then val, then test), because overlapping windows of one stretch of signal in both
train and test would leak.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError
from pipeline.data.discovery import Sample, require_cells

INTERVAL_COLUMNS = ("file", "start", "end", "label")


@dataclass(frozen=True)
class Interval:
    """`label` holds from `start` to `end` seconds."""

    start: float
    end: float
    label: str


def is_interval_csv(path: str | Path) -> bool:
    """True for a CSV file whose header starts with ``file,start,end,label``."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    return tuple(h.strip() for h in header[:4]) == INTERVAL_COLUMNS


def read_intervals(path: str | Path) -> dict[Path, list[Interval]]:
    """Intervals per recording (absolute paths), checked: every cell given, numbers,
    end > start, files exist, and no two intervals of one recording overlap."""
    path = Path(path)
    found: dict[Path, list[tuple[Interval, int]]] = defaultdict(list)  # with line numbers
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}, line {line_no}"
            require_cells(row, INTERVAL_COLUMNS, where)
            try:
                start, end = float(row["start"]), float(row["end"])
            except ValueError:
                raise UserError(
                    f"{where}: start and end must be numbers of seconds, got "
                    f"{row['start']!r} and {row['end']!r}."
                ) from None
            if not end > start >= 0:
                raise UserError(f"{where}: needs 0 <= start < end, got {start}, {end}.")
            recording = (path.parent / row["file"].strip()).resolve()
            if not recording.is_file():
                raise UserError(f"{where}: {recording} does not exist.")
            found[recording].append((Interval(start, end, row["label"].strip()), line_no))
    if not found:
        raise UserError(f"{path}: lists no intervals.")
    for recording, rows in found.items():
        ordered = sorted(rows, key=lambda row: (row[0].start, row[0].end))
        for (before, line), (after, next_line) in zip(ordered, ordered[1:], strict=False):
            if after.start < before.end:
                raise UserError(
                    f"{path}, lines {line} and {next_line}: intervals of "
                    f"{recording.name} overlap ({before.start:g}-{before.end:g} s "
                    f"{before.label!r}, {after.start:g}-{after.end:g} s {after.label!r}); a "
                    "step can have one label only. Trim one of them."
                )
    return {recording: [i for i, _ in rows] for recording, rows in sorted(found.items())}


def step_labels(times: np.ndarray, intervals: list[Interval], class_index: dict) -> np.ndarray:
    """Class index of each step `[T]` (-1 where no interval covers its time)."""
    labels = np.full(len(times), -1, dtype=np.int64)
    for interval in intervals:
        labels[(times >= interval.start) & (times < interval.end)] = class_index[interval.label]
    return labels


def window_samples(
    path: Path,
    source: Path,
    *,
    times: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    length: float,
    hop: float,
    fractions: tuple[float, float],
    per_step: bool,
) -> list[Sample]:
    """Windows of one processed recording (steps at `times`), labelled and split in time."""
    rate = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    size, stride = round(length * rate), max(1, round(hop * rate))
    if size < 1 or size > len(times):
        raise UserError(
            f"{source}: a {length} s window is {size} steps at {rate:g} steps/s, but the "
            f"processed recording has {len(times)}; choose data.window_length between "
            f"{1 / rate:g} s and {len(times) / rate:g} s."
        )
    val_fraction, test_fraction = fractions
    cuts = np.round(
        np.array([1 - val_fraction - test_fraction, 1 - test_fraction, 1.0]) * len(times)
    )
    samples = []
    scored_until = [0, 0, 0]  # per split: end of the last window kept
    for start in range(0, len(times) - size + 1, stride):
        stop = start + size
        split_index = int(np.searchsorted(cuts, stop, side="left"))
        if split_index > 0 and start < cuts[split_index - 1]:
            continue  # straddles a split boundary
        if per_step and split_index > 0 and start < scored_until[split_index]:
            continue  # val/test windows labelled per step tile the time: each step scored once
        window = labels[start:stop]
        counts = np.bincount(window[window >= 0], minlength=len(class_names))
        if per_step and counts.sum() == 0:
            continue
        if not per_step and counts.max() * 2 < size:
            continue  # no class covers half the window
        scored_until[split_index] = stop
        samples.append(
            Sample(
                path, class_names[int(counts.argmax())], ("train", "val", "test")[split_index],
                source=source, steps=(start, stop),
                seconds=(float(times[start]), float(times[stop - 1])),
            )
        )  # fmt: skip
    return samples
