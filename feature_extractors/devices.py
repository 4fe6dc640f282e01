"""Devices: names checked before any work starts (a device this machine lacks is named), and
what a device computes in."""

from __future__ import annotations

import contextlib

import torch


def parse_device(name: str) -> torch.device:
    """`name` (``cpu``, ``cuda``, ``cuda:N``, ``mps``) as a `torch.device`; a ValueError that
    says why when it is not a device or this machine has no such GPU."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{name!r} is not a torch device (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{name!r}: torch finds no CUDA GPU here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name!r}: this machine has {count} CUDA GPU(s), cuda:0 to "
                             f"cuda:{count - 1}")  # fmt: skip
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name!r}: torch finds no Apple GPU (mps) here")
    return device


def resolve_device(name: str) -> str:
    """`name` as the device to run on: ``auto`` is ``cuda`` where torch finds a GPU, else
    ``cpu``; any other name is checked by `parse_device` (a ValueError that says why)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    parse_device(name)
    return name


def bf16_emulated(device: torch.device | str) -> str | None:
    """Why bfloat16 is slow on `device`, or None: a CUDA GPU before Ampere (compute capability
    below 8.0) has no bfloat16 units, so torch emulates them there, slower than float32."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return None
    return (
        f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) has no "
        "bfloat16 units: torch emulates bfloat16 there, slower than float32"
    )


def float32_convolutions() -> contextlib.AbstractContextManager:
    """Inside, cuDNN convolutions run in float32 (its default on Ampere and later GPUs is TF32,
    about 10 bits of mantissa); cuDNN's other settings stay as they are. A trace made inside
    keeps float32 too, as a trace records this switch in each convolution."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=False,
    )
