"""The `--device` option of the commands that run a model or a CNN outside Lightning."""

from __future__ import annotations

import argparse

import torch

from feature_extractors.devices import parse_device


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--device`, checked as it is parsed; by default the GPU when torch finds one."""
    parser.add_argument(
        "--device", type=_checked_device,
        default=default or ("cuda" if torch.cuda.is_available() else "cpu"),
        help="cpu, cuda (each process's own GPU) or cuda:N (default: %(default)s)",
    )  # fmt: skip


def _checked_device(name: str) -> str:
    try:
        parse_device(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{err}; pass --device cpu or a GPU this machine has"
        ) from None
    return name
