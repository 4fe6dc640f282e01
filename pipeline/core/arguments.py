"""Option types the data commands share, checked as they are parsed: `--device`, counts and
output paths. Commands that take no device do not load torch for the others."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--device`, checked as it is parsed; by default the GPU when torch finds one."""
    import torch

    parser.add_argument(
        "--device", type=_checked_device,
        default=default or ("cuda" if torch.cuda.is_available() else "cpu"),
        help="cpu, cuda (each process's own GPU) or cuda:N (default: %(default)s)",
    )  # fmt: skip


def _checked_device(name: str) -> str:
    from feature_extractors.devices import parse_device

    try:
        parse_device(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{err}; pass --device cpu or a GPU this machine has"
        ) from None
    return name


def count(at_least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `at_least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < at_least:
            raise argparse.ArgumentTypeError(f"{value}: it must be {at_least} or more")
        return value

    return parse


def output_folder(text: str) -> Path:
    """An argparse type: a folder to write into, created if missing, so not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file; give a folder to write into (it is created if missing)"
        )
    return path


def output_file(text: str) -> Path:
    """An argparse type: a file to write, so not an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file path inside it")
    return path
