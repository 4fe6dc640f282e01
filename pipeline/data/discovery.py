"""Find labelled samples in class folders or a manifest, and split them into train/val/test.

Layouts, in order of precedence:

- a manifest CSV with columns ``path,label[,split]`` (paths relative to the manifest);
- ``ROOT/train|val|test/<class>/<sample>``: the split folders that exist are used as given;
- ``ROOT/<class>/<sample>``: everything is train.

Samples without a given split are split from train: stratified, seeded, by fraction.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from feature_extractors.signal import RECORDING_SUFFIXES
from feature_extractors.signal.io import channel_names
from feature_extractors.video import VIDEO_SUFFIXES
from pipeline.core.errors import UserError
from pipeline.data.sequence_files import sequence_shape

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One input file, its class name (None when unlabelled) and its split.

    `source` is the raw recording a cached feature file was made from, when there is one;
    `steps` a window ``[start, stop)`` of the file's time steps, and `seconds` its first and
    last step's times.
    """

    path: Path
    label: str | None
    split: str = "train"
    source: Path | None = None
    steps: tuple[int, int] | None = None
    seconds: tuple[float, float] | None = None
    group: str | None = None  # e.g. subject or speaker: kept within one cross-validation fold

    @property
    def window(self) -> slice:
        """The sample's steps of its file: the window, or all of them."""
        return slice(*self.steps) if self.steps is not None else slice(None)


def discover(root: str | Path, suffixes: tuple[str, ...]) -> list[Sample]:
    """Samples under `root` (a class-folder tree, optionally in train/val/test) or in a manifest.

    `suffixes` are the accepted file suffixes, e.g. ``(".npy", ".csv")``.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return _read_manifest(root)
        raise UserError(
            f"data root {root} is a file; pass the folder of <class>/<sample> files, or a "
            "manifest CSV (path,label[,split][,group]). To label single files with a trained "
            "model, use `seqclass classify FILE --checkpoint CKPT`."
        )
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist; pass an existing folder.")
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    _check_split_folders(root, split_dirs, suffixes)
    if split_dirs:
        samples = [s for d in split_dirs for s in _class_folders(d, suffixes, split=d.name)]
    else:
        samples = _class_folders(root, suffixes, split="train")
    if not samples:
        raise UserError(
            f"no samples found under {root}: expected ROOT/<class>/<sample> files with suffix "
            f"{', '.join(suffixes)} (optionally inside train/, val/, test/), or a manifest CSV."
        )
    return samples


def _check_split_folders(root: Path, split_dirs: list[Path], suffixes: tuple[str, ...]) -> None:
    """Refuse a tree where `train`/`val`/`test` could be a class: beside other class folders,
    or holding sample files itself."""
    if not split_dirs:
        return
    others = sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in SPLITS
    )  # fmt: skip
    loose = next((d for d in split_dirs for p in d.iterdir() if is_sample_file(p, suffixes)), None)
    if others or loose is not None:
        found = f"beside the class folders {', '.join(others)}" if others else "holding samples"
        raise UserError(
            f"{root}: has a {(split_dirs[0] if others else loose).name}/ folder {found}; train, "
            "val and test name splits, not classes. Put the class folders inside train/ (and "
            "val/, test/), or rename a class that is called so."
        )


def discover_unlabelled(root: str | Path, suffixes: tuple[str, ...]) -> list[Sample]:
    """Every file with an accepted suffix under `root`, labelled by its class folder if any."""
    root = Path(root)
    if root.is_file():
        return [Sample(root, None, "predict")]
    if not root.is_dir():
        raise UserError(f"{root} does not exist; pass a file or a folder of samples.")
    found = walk(root)
    files = sorted(p for p in found if is_sample_file(p, suffixes))
    if not files:
        raise UserError(
            f"no files with suffix {', '.join(suffixes)} under {root}"
            f"{held_instead(found, suffixes) or '.'}"
        )
    return [Sample(p, p.parent.name if p.parent != root else None, "predict") for p in files]


def held_instead(paths: list[Path], suffixes: tuple[str, ...]) -> str:
    """The end of an error about a folder without files of `suffixes`: what `paths` (its
    contents) hold instead, and how videos or recordings given as sequence files are read;
    empty when they hold no files."""
    held = Counter(p.suffix.lower() for p in paths if p.suffix and p.is_file()).most_common(3)
    if not held:
        return ""
    there = "; it holds " + ", ".join(f"{n} {s}" for s, n in held) + " files."
    found = {s for s, _ in held} - set(suffixes)
    if found & set(VIDEO_SUFFIXES):
        there += " Videos become sequence files with `seqclass extract VIDEOS --out FEATURES`."
    elif found & set(RECORDING_SUFFIXES):
        there += (
            " Recordings are read through a signal chain: `--data.signal '{}'` takes them as "
            "they are, `--config configs/signal_vmd.yaml` filters and decomposes them."
        )
    return there


def walk(root: Path) -> list[Path]:
    """Every file and folder under `root`, through links to folders (as torchvision's
    `ImageFolder` follows them: a class folder may be a link), each real folder once."""
    found, seen = [], set()
    for folder, names, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up, or a second link to one folder
            names.clear()
            continue
        seen.add(real)
        found += [Path(folder, name) for name in (*names, *files)]
    return found


def is_sample_file(path: Path, suffixes: tuple[str, ...]) -> bool:
    """A file with an accepted suffix, and not one of the ``._name`` files macOS writes beside
    every file on non-Apple disks (resource forks that only look like samples)."""
    return path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith("._")


def class_names_of(samples: list[Sample]) -> list[str]:
    """Sorted class names; at least two are required to train a classifier."""
    names = sorted({s.label for s in samples if s.label is not None})
    if len(names) < 2:
        raise UserError(
            f"found {len(names)} class ({', '.join(names) or 'none'}); a classifier needs at least "
            "two class folders, each holding samples of one class."
        )
    return names


def assign_splits(
    samples: list[Sample], val_fraction: float, test_fraction: float, *, seed: int
) -> list[Sample]:
    """Move a stratified, seeded share of the train samples into val and test.

    A split that already has samples (from folders or the manifest) is left as given.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {frac}")
    present = {s.split for s in samples}
    fractions = {
        "val": 0.0 if "val" in present else val_fraction,
        "test": 0.0 if "test" in present else test_fraction,
    }
    if any(s.group is not None for s in samples if s.split == "train"):
        return _split_by_group(samples, fractions, seed)
    by_class: dict[str | None, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.split == "train":
            by_class[s.label].append(s)
    rng = random.Random(seed)
    out = [s for s in samples if s.split != "train"]
    for label in sorted(by_class, key=str):
        group = sorted(by_class[label], key=lambda s: str(s.path))
        rng.shuffle(group)
        counts = {k: max(1, round(len(group) * f)) if f > 0 else 0 for k, f in fractions.items()}
        needed = 1 + counts["val"] + counts["test"]
        if len(group) < needed:
            raise UserError(
                f"class {label!r} has {len(group)} training sample(s), too few for a train/val/test "
                f"split (needs {needed}). Add samples, give explicit val/ and test/ folders, or set "
                "data.val_fraction / data.test_fraction to 0."
            )
        cut_val = counts["val"]
        cut_test = cut_val + counts["test"]
        out += [replace(s, split="val") for s in group[:cut_val]]
        out += [replace(s, split="test") for s in group[cut_val:cut_test]]
        out += group[cut_test:]
    return sorted(out, key=lambda s: (SPLITS.index(s.split), str(s.path)))


def _split_by_group(samples: list[Sample], fractions: dict[str, float], seed: int) -> list[Sample]:
    """`assign_splits` for samples with groups: whole groups move to test, then to val, each
    about its share of the samples (stratified as far as the groups allow)."""
    from sklearn.model_selection import StratifiedGroupKFold

    pool = [s for s in samples if s.split == "train"]
    out = [s for s in samples if s.split != "train"]
    _groups_of(pool, None)  # all or none
    left = 1.0
    for split in ("test", "val"):
        if not fractions[split]:
            continue
        folds = max(2, round(left / fractions[split]))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        try:
            _, held_out = next(
                splitter.split(pool, [s.label for s in pool], [s.group for s in pool])
            )
        except ValueError as err:
            raise UserError(
                f"cannot hold out {fractions[split]:.0%} of the samples as whole groups for the "
                f"{split} split: {err}. Add groups, or give explicit split columns."
            ) from None
        held = set(held_out.tolist())
        out += [replace(s, split=split) for i, s in enumerate(pool) if i in held]
        pool = [s for i, s in enumerate(pool) if i not in held]
        left -= fractions[split]
    return sorted(out + pool, key=lambda s: (SPLITS.index(s.split), str(s.path)))


def _groups_of(samples: list[Sample], pattern: str | None) -> list:
    """Each sample's group (all None when none has one); a mix of samples with and without
    one is refused."""
    groups = [_group_of(s, pattern) for s in samples]
    if any(g is not None for g in groups):
        missing = next((s for s, g in zip(samples, groups, strict=True) if g is None), None)
        if missing is not None:
            raise UserError(
                f"{missing.path}: has no group while other samples do; give every sample a "
                "group (manifest column `group`, or a data.group_pattern that matches every "
                "file name)."
            )
    return groups


def assign_fold(
    samples: list[Sample], fold: int, folds: int, *, seed: int, group_pattern: str | None = None
) -> list[Sample]:
    """Deal the train and val samples into `folds` stratified, seeded folds and make fold
    `fold` the val split, the others train; the test split is left alone.

    With groups (a manifest's ``group`` column, or `group_pattern`, a regular expression
    whose first group, or whole match, is searched in each file name; windows of one recording
    form a group), no group is spread over two folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if not 0 <= fold < folds:
        raise UserError(f"data.fold {fold} must be in [0, {folds}) for {folds} folds.")
    pool = [s for s in samples if s.split != "test"]
    groups = _groups_of(pool, group_pattern)
    grouped = any(g is not None for g in groups)
    kind = StratifiedGroupKFold if grouped else StratifiedKFold
    splitter = kind(n_splits=folds, shuffle=True, random_state=seed)
    labels = [s.label for s in pool]
    try:
        _, held_out = list(splitter.split(pool, labels, groups if grouped else None))[fold]
    except ValueError as err:
        raise UserError(f"cannot make {folds} folds of {len(pool)} samples: {err}") from None
    val = set(held_out.tolist())
    dealt = [replace(s, split="val" if i in val else "train") for i, s in enumerate(pool)]
    return dealt + [s for s in samples if s.split == "test"]


def _group_of(sample: Sample, pattern: str | None) -> str | None:
    if sample.group is not None:
        return sample.group
    if pattern is not None:
        match = re.search(pattern, sample.path.name)
        return None if match is None else (match.group(1) if match.groups() else match.group(0))
    if sample.steps is not None:
        return str(sample.source or sample.path)  # windows of one recording
    return None


def _class_folders(folder: Path, suffixes: tuple[str, ...], split: str) -> list[Sample]:
    samples = []
    for class_dir in sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        contents = list(class_dir.iterdir())
        _refuse_nested(class_dir, contents, suffixes)
        files = sorted(p for p in contents if is_sample_file(p, suffixes))
        if not files:
            raise UserError(
                f"class folder {class_dir} has no sample files ({', '.join(suffixes)})"
                f"{held_instead(contents, suffixes) or '; add samples or remove the folder.'}"
            )
        samples += [Sample(p, class_dir.name, split) for p in files]
    return samples


def _refuse_nested(class_dir: Path, contents: list[Path], suffixes: tuple[str, ...]) -> None:
    """Refuse sample files in subfolders of a class folder, which would be left out unseen."""
    folders = [p for p in contents if p.is_dir() and not p.name.startswith(".")]
    nested = next((p for d in folders for p in walk(d) if is_sample_file(p, suffixes)), None)
    if nested is not None:
        raise UserError(
            f"{nested}: a sample file in a subfolder of the class folder {class_dir}, which "
            "would not be read. Put each sample directly in its class folder, or list them in a "
            "manifest CSV (path,label[,group]; a group, such as a subject, stays in one split). "
            "Samples of several streams (<class>/<sample>/camera.mp4 beside imu.csv) are "
            "encoded first: `seqclass extract ROOT --out FEATURES --signal CHAIN.yaml`."
        )


def require_cells(row: dict[str, str | None], columns: tuple[str, ...], where: str) -> None:
    """Refuse a CSV row (from `csv.DictReader`) with an empty or missing cell in `columns`."""
    missing = [c for c in columns if not (row.get(c) or "").strip()]
    if missing:
        raise UserError(f"{where}: no {' or '.join(missing)}; fill every cell.")


def _read_manifest(manifest: Path) -> list[Sample]:
    with manifest.open(newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise UserError(
                f"manifest {manifest}: needs a header with columns path,label[,split][,group]; "
                f"found {reader.fieldnames}."
            )
        rows = list(reader)
    samples, lines = [], {}
    for line_no, row in enumerate(rows, start=2):
        where = f"manifest {manifest}, line {line_no}"
        require_cells(row, ("path", "label"), where)
        split = (row.get("split") or "train").strip()
        if split not in SPLITS:
            raise UserError(f"{where}: split {split!r} is not one of {SPLITS}.")
        path = (manifest.parent / row["path"].strip()).resolve()
        if not path.is_file():
            raise UserError(f"{where}: {path} does not exist.")
        if path in lines:
            raise UserError(
                f"manifest {manifest}, lines {lines[path]} and {line_no}: both list {path}; a "
                "file is one sample, with one label and one split. Remove one of the rows."
            )
        lines[path] = line_no
        group = (row.get("group") or "").strip() or None
        samples.append(Sample(path, row["label"].strip(), split, group=group))
    if not samples:
        raise UserError(f"manifest {manifest} lists no samples.")
    return samples


def write_manifest(manifest: Path, samples: list[Sample]) -> None:
    """Write a manifest CSV (``path,label,split,group``, paths relative to its folder) that
    `discover` reads back as `samples`."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split", "group"])
        for s in samples:
            relative = Path(os.path.relpath(s.path, manifest.parent)).as_posix()
            writer.writerow([relative, s.label, s.split, s.group or ""])


def columns_of(sample: Sample, channels: list[str] | None = None) -> list[str] | None:
    """The names and order of the channels of the file `sample` comes from (its raw
    recording's, for preprocessed signals): `channel_names`, a CSV header's or an EDF file's,
    or `channels` where the chain reads those. None for other files."""
    return channel_names(sample.source or sample.path, channels)


def same_columns(paths: Iterable[Path], channels: list[str] | None = None) -> list[str] | None:
    """The one list of channel names of the files among `paths` that name theirs (CSV, EDF;
    None without any), or `channels` where the chain reads those by name. A channel is known
    by its place, so files whose names differ (the same names in another order, say) would be
    mixed: a UserError names two of them, both lists and the fix."""
    if channels is not None:  # each file is read by name, in this order
        return list(channels)
    reference, first = None, None
    for path in dict.fromkeys(paths):  # windows of a recording share its file
        columns = channel_names(path)
        if columns is None or columns == reference:
            continue
        if reference is not None:
            raise UserError(
                f"{path}: has the channels {','.join(columns)} but {first} has "
                f"{','.join(reference)}; a channel is known by its place, so every file needs "
                "the same ones in one order. Write them in one order with one set of names; "
                "recordings read through a signal chain may instead name the channels to read "
                f"(`--data.signal.channels '[{', '.join(reference)}]'`)."
            )
        reference, first = columns, path
    return reference


def step_times(sample: Sample) -> np.ndarray:
    """Seconds of each step of `sample` (its window's): from the features' ``times`` when they
    carry them (preprocessed signals), else step indices."""
    if sample.path.suffix == ".npz":
        with np.load(sample.path, allow_pickle=False) as npz:
            if "times" in npz.files:
                return npz["times"][sample.window]
    return np.arange(sequence_shape(sample.path)[0], dtype=np.float64)[sample.window]
