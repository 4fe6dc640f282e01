"""A recording's channels by name: a CSV header's, an EDF/BDF file's labels, else ch0, ch1, ..."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from feature_extractors.errors import SignalError


def default_names(count: int) -> list[str]:
    """The names of the channels of a file that names none: ch0, ch1, ..."""
    return [f"ch{c}" for c in range(count)]


def channel_indices(names: list[str], channels: Sequence[str], path: str | Path) -> list[int]:
    """Where each of `channels` is among a file's channel `names`; a SignalError names a channel
    the file lacks, or holds twice, and the ones it has."""
    indices = []
    for channel in channels:
        found = [i for i, name in enumerate(names) if name == channel]
        if len(found) != 1:
            why = "has no channel" if not found else "holds two channels named"
            raise SignalError(
                f"{path}: {why} {channel!r}; its channels are {', '.join(names)}. Name the "
                "channels to read from those (data.signal.channels)."
            )
        indices.append(found[0])
    return indices
