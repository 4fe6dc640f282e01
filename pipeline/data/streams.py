"""Find samples made of several synchronized streams: a video and sensor recordings of one moment.

Layouts:

- ``ROOT/[train|val|test/]<class>/<sample>/`` folders, each holding one file per stream; the
  stream is the file's stem (``camera.mp4``, ``imu.csv``, ``vibration.wav``);
- a manifest CSV ``label,<stream>,<stream>[,...][,split][,group][,offset_<stream>]``: a column
  per stream holding its file (relative to the manifest), and ``offset_<stream>`` the seconds
  after the start of the others at which that stream starts.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from feature_extractors.signal import RECORDING_SUFFIXES
from feature_extractors.video import VIDEO_SUFFIXES
from pipeline.core.errors import UserError
from pipeline.data.discovery import SPLITS, is_sample_file, require_cells, walk
from pipeline.data.video_lists import is_clip_table

STREAM_SUFFIXES = VIDEO_SUFFIXES + RECORDING_SUFFIXES
_MANIFEST_COLUMNS = {"label", "split", "group", "path"}


@dataclass
class StreamSample:
    """One moment seen by several streams: each stream's file, and its start offset (seconds).

    `name` is where its fused sequence goes, relative to the output folder, without suffix.
    """

    name: str
    streams: dict[str, Path]
    label: str | None
    split: str = "train"
    group: str | None = None
    offsets: dict[str, float] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The folder of its (first) stream file: what failures and predictions name."""
        return next(iter(self.streams.values())).parent


def stream_kind(path: Path) -> str:
    """``video`` or ``signal``, by the file's suffix."""
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "signal"


def is_stream_layout(root: str | Path) -> bool:
    """True for a manifest with a column per stream (not a `path` manifest, nor an interval CSV),
    or class folders that hold sample folders."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            return False
        with root.open(newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        clips = is_clip_table(root)  # Kinetics' label,youtube_id,time_start,time_end,split
        return "label" in header and not {"path", "start", "end"} & set(header) and not clips
    bases = [root / s for s in SPLITS if (root / s).is_dir()] or [root]
    return any(_stream_files(d) for base in bases for d in _folders(base.glob("*/*"), base))


def discover_stream_samples(root: str | Path) -> list[StreamSample]:
    """Labelled multi-stream samples of a sample-folder tree or a manifest."""
    root = Path(root)
    if root.is_file():
        return _read_manifest(root)
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    samples = []
    for base in split_dirs or [root]:
        split = base.name if split_dirs else "train"
        for folder in sorted(d for d in _folders(base.glob("*/*"), base) if _stream_files(d)):
            name = folder.relative_to(root).as_posix()
            samples.append(StreamSample(name, _stream_files(folder), folder.parent.name, split))
    if not samples:
        raise UserError(
            f"no multi-stream samples under {root}: expected ROOT/<class>/<sample>/ folders, each "
            "holding one file per stream (camera.mp4, imu.csv, ...)."
        )
    return samples


def discover_unlabelled_stream_samples(root: str | Path) -> list[StreamSample]:
    """Every folder under `root` (itself included) that holds stream files: one sample each,
    labelled by its parent folder when that lies inside `root`."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; give sample folders of stream files.")
    folders = sorted(d for d in _folders([root, *walk(root)], root) if _stream_files(d))
    if not folders:
        raise UserError(f"no stream files ({', '.join(STREAM_SUFFIXES)}) under {root}.")
    return [
        StreamSample(
            d.relative_to(root.parent).as_posix(),
            _stream_files(d),
            d.parent.name if d != root and d.parent != root else None,
            "predict",
        )
        for d in folders
    ]


def common_streams(samples: list[StreamSample]) -> list[str]:
    """The streams that at least half of the samples have, videos first, then by name."""
    counts = Counter(name for s in samples for name in s.streams)
    kinds = {name: stream_kind(path) for s in samples for name, path in s.streams.items()}
    names = [name for name, n in counts.items() if 2 * n >= len(samples)]
    return sorted(names, key=lambda name: (kinds[name] != "video", name))


def _folders(paths: Iterable[Path], root: Path) -> list[Path]:
    """The folders among `paths`, leaving out hidden ones (an extraction's ``.streams`` cache)."""
    return [
        p for p in paths
        if p.is_dir() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]  # fmt: skip


def _stream_files(folder: Path) -> dict[str, Path]:
    """`stem -> file` of the stream files directly inside `folder`."""
    return {p.stem: p for p in sorted(folder.iterdir()) if is_sample_file(p, STREAM_SUFFIXES)}


def _read_manifest(manifest: Path) -> list[StreamSample]:
    with manifest.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    streams = [c for c in columns if c not in _MANIFEST_COLUMNS and not c.startswith("offset_")]
    if len(streams) < 1 or "label" not in columns:
        raise UserError(
            f"manifest {manifest}: needs a header label,<stream>,<stream>[,split][,group]"
            f"[,offset_<stream>]; found {columns}."
        )
    unknown = [c for c in columns if c.startswith("offset_") and c[7:] not in streams]
    if unknown:
        raise UserError(f"manifest {manifest}: {unknown[0]} names no stream column.")
    samples, seen = [], {}
    for line_no, row in enumerate(rows, start=2):
        where = f"manifest {manifest}, line {line_no}"
        require_cells(row, ("label",), where)
        split = (row.get("split") or "train").strip()
        if split not in SPLITS:
            raise UserError(f"{where}: split {split!r} is not one of {SPLITS}.")
        files = {s: manifest.parent / row[s].strip() for s in streams if (row[s] or "").strip()}
        if not files:
            raise UserError(f"{where}: names no stream file; fill a stream column.")
        offsets = {}
        for s in streams:
            cell = (row.get(f"offset_{s}") or "").strip()
            try:
                offsets[s] = float(cell) if cell else 0.0
            except ValueError:
                raise UserError(f"{where}: offset_{s} {cell!r} is not seconds.") from None
        first = next(iter(files.values()))
        name = f"{row['label'].strip()}/{first.parent.name}_{first.stem}"
        if name in seen:
            raise UserError(
                f"manifest {manifest}, lines {seen[name]} and {line_no}: both would be fused as "
                f"{name}; give each sample its own {next(iter(files))} file."
            )
        seen[name] = line_no
        group = (row.get("group") or "").strip() or None
        samples.append(StreamSample(name, files, row["label"].strip(), split, group, offsets))
    if not samples:
        raise UserError(f"manifest {manifest} lists no samples.")
    return samples
