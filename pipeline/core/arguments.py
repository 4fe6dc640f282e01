"""Option types the data commands share, checked as they are parsed: `--device`, counts and
output paths. None loads torch before the options are parsed, so `--help` answers at once."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_device_argument(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """`--device`, checked as it is parsed; `auto`, as Lightning's accelerator, is the GPU when
    torch finds one (torch loads when the options are parsed, not for `--help`)."""
    parser.add_argument(
        "--device", type=_checked_device, default=default,
        help="cpu, cuda (each process's own GPU), cuda:N, or auto: cuda where torch finds a "
        "GPU, else cpu (default: %(default)s)",
    )  # fmt: skip


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """`--num-workers`: video decoding processes (`pipeline.prepare.extract.decode_workers`
    when not given)."""
    parser.add_argument(
        "--num-workers", type=count(0),
        help="video decoding processes (default: 2 on a CPU; on a GPU one per core but one, up "
        "to 8)",
    )  # fmt: skip


def _checked_device(name: str) -> str:
    from feature_extractors.devices import resolve_device

    try:
        return resolve_device(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{err}; pass --device cpu or a GPU this machine has"
        ) from None


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
