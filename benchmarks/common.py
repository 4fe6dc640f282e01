"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import datetime
import platform

import torch


def sync(device: str) -> None:
    """Wait for queued GPU work, so that timings cover it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def machine(device: str) -> str:
    """Date, CPU, threads, GPU and torch version: the header of every recorded figure."""
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else "no GPU used"
    return (
        f"{datetime.date.today()}; {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads; {gpu}; torch {torch.__version__}"
    )
