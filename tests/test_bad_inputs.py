"""Inputs that used to be misread or crash: each is handled, and nothing wrong is trained on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from pipeline.data.discovery import discover, discover_unlabelled
from pipeline.data.sequence_files import save_npz

from conftest import random_tree, write_npy


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
