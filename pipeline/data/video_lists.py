"""The split lists and clip tables that video datasets ship, read as they come.

- **Split lists**: UCF101's ``trainlist0N.txt`` / ``testlist0N.txt`` (``Class/v_Class_g08_c01.avi
  [index]`` per line) and HMDB51's ``<class>_test_splitN.txt`` (``name.avi 1|2|0``: train, test,
  unused), for fold N. Paths are relative to the video folder; the class is the video's folder.
  A UCF101 video's group is its ``gNN`` (clips of one group share actors and scenes), an HMDB51
  clip's is the video it was cut from, so a val split drawn from train keeps them whole.
- **Clip tables**: a CSV with a row per clip of a longer video: ``path,start,end,label[,split]
  [,group]`` (seconds), or Kinetics' ``label,youtube_id,time_start,time_end,split`` (the video
  is the file named ``<youtube_id>.<suffix>`` anywhere under the table's folder). Clips of one
  video are one group unless a ``group`` column says otherwise.

Rows that cannot be used (a missing file, end <= start, a negative start, no label) are returned
as `(path, reason)` rejections, to be listed in ``failures.csv`` while the rest run.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from feature_extractors.video import VIDEO_SUFFIXES
from pipeline.core.errors import UserError
from pipeline.data.discovery import SPLITS, Sample, walk

Rejected = list[tuple[Path, str]]

# accepted names of each column of a clip table (Kinetics', activity datasets')
_COLUMNS = {
    "path": ("path", "video", "filename", "file"),
    "id": ("youtube_id", "video_id", "id"),
    "start": ("start", "time_start", "start_time", "t_start"),
    "end": ("end", "time_end", "end_time", "t_end"),
}
_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validate": "val",
                "validation": "val", "test": "test", "testing": "test"}  # fmt: skip
_UCF_GROUP = re.compile(r"_(g\d+)_c\d+", re.IGNORECASE)


def is_clip_table(path: Path) -> bool:
    """A CSV whose header names a start and an end column: each row is a clip of a video."""
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = {h.strip().lower() for h in next(csv.reader(fh), [])}
    return bool(header & set(_COLUMNS["start"])) and bool(header & set(_COLUMNS["end"]))


def read_clip_table(table: Path) -> tuple[list[Sample], Rejected]:
    """The clips a clip table lists (`Sample.seconds` is each one's interval), and the rows
    that cannot be used."""
    with table.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                for row in reader]  # fmt: skip
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    column = {key: next((n for n in names if n in header), None) for key, names in _COLUMNS.items()}
    if "label" not in header or not (column["path"] or column["id"]):
        raise UserError(
            f"{table}: a clip table needs the columns path,start,end,label[,split][,group] "
            f"(or Kinetics' label,youtube_id,time_start,time_end,split); found {header}."
        )
    by_stem = _videos_by_stem(table.parent) if not column["path"] else {}
    samples, rejected = [], []
    for line, row in enumerate(rows, start=2):
        where = f"{table}, line {line}"
        name = row[column["path"] or column["id"]]
        path = (table.parent / name).resolve() if column["path"] else by_stem.get(name)
        shown = path or table.parent / name
        try:
            start, end = float(row[column["start"]]), float(row[column["end"]])
        except ValueError:
            rejected.append((shown, f"{where}: start and end must be seconds"))
            continue
        problem = _problem(path, name, row, start, end)
        if problem:
            rejected.append((shown, f"{where}: {problem}"))
            continue
        split = _SPLIT_NAMES.get(row.get("split", "").lower() or "train")
        if split is None:
            raise UserError(f"{where}: split {row['split']!r} is not one of {SPLITS}.")
        group = row.get("group") or name  # clips of one video stay together
        samples.append(Sample(path, row["label"], split, group=group, seconds=(start, end)))
    if not samples and not rejected:
        raise UserError(f"{table} lists no clips.")
    return samples, rejected


def _problem(path: Path | None, name: str, row: dict, start: float, end: float) -> str | None:
    """Why a clip row cannot be used, or None."""
    if path is None:
        return f"no video named {name}.<{'|'.join(s[1:] for s in VIDEO_SUFFIXES)}> beside it"
    if not path.is_file():
        return f"{path} does not exist"
    if not row.get("label"):
        return "no label"
    if start < 0 or end <= start:
        return f"the interval {start:g}-{end:g} s is empty or starts before 0"
    return None


def _videos_by_stem(folder: Path) -> dict[str, Path]:
    """Every video under `folder` by file name without its suffix (Kinetics names videos by
    their YouTube id)."""
    videos = sorted(p for p in walk(folder) if p.suffix.lower() in VIDEO_SUFFIXES)
    return {p.stem: p.resolve() for p in reversed(videos)}  # the first in path order wins


def read_split_lists(root: Path, lists: Path, fold: int) -> tuple[list[Sample], Rejected]:
    """The videos under `root` with the train/test split of fold `fold` of UCF101's or
    HMDB51's lists (`lists`: their folder, or one list file beside the others); listed videos
    that are missing are rejected."""
    folder = lists if lists.is_dir() else lists.parent
    ucf = [folder / f"{kind}list{fold:02d}.txt" for kind in ("train", "test")]
    hmdb = sorted(folder.glob(f"*_test_split{fold}.txt"))
    if all(p.is_file() for p in ucf):
        listed = [(line.split()[0], split) for p, split in zip(ucf, ("train", "test"), strict=True)
                  for line in _lines(p)]  # fmt: skip
    elif hmdb:
        listed = [
            (f"{p.name[: -len(f'_test_split{fold}.txt')]}/{name}", split)
            for p in hmdb for name, split in _hmdb_rows(p)
        ]  # fmt: skip
    else:
        raise UserError(
            f"{lists}: no split lists of fold {fold}: expected UCF101's trainlist{fold:02d}.txt "
            f"and testlist{fold:02d}.txt, or HMDB51's <class>_test_split{fold}.txt files."
        )
    on_disk = {p.relative_to(root).as_posix().lower(): p for p in walk(root) if p.is_file()}
    samples, rejected = [], []
    for relative, split in listed:
        path = root / relative
        if not path.is_file():  # UCF101's lists and folders differ in case (HandStandPushups)
            path = on_disk.get(relative.lower(), path)
        if not path.is_file():
            rejected.append((path, f"listed for {split} in the fold {fold} lists, but missing"))
            continue
        label = path.parent.name
        samples.append(Sample(path, label, split, group=_group(path, label)))
    if not samples:
        raise UserError(f"none of the videos the fold {fold} lists in {folder} is under {root}.")
    return samples, rejected


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _hmdb_rows(path: Path) -> list[tuple[str, str]]:
    """An HMDB51 list's videos of train (1) and test (2); 0 is unused in this fold."""
    rows = []
    for line in _lines(path):
        name, code = line.split()[:2]
        if code in ("1", "2"):
            rows.append((name, "train" if code == "1" else "test"))
    return rows


def _group(path: Path, label: str) -> str:
    """UCF101's ``gNN`` of a file name, or the HMDB51 video a clip was cut from (the name
    before ``_<class>_``)."""
    match = _UCF_GROUP.search(path.stem)
    if match:
        return match.group(1).lower()
    return path.stem.split(f"_{label}_")[0]
