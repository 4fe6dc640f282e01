"""The result every decomposition (VMD, EMD, EEMD, CEEMDAN) returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Decomposition:
    """Modes of signals `[..., T]`; `...` are the input's leading dimensions."""

    modes: torch.Tensor  # [..., K, T], sorted by increasing centre frequency
    residual: torch.Tensor  # [..., T]: input minus the sum of the modes
    center_frequencies: torch.Tensor  # [..., K]: Hz when fs was given, else cycles per sample
    iterations: torch.Tensor  # [...]: VMD iterations run; EMD: modes found before padding to K
    converged: torch.Tensor  # [...]: stopped by its own criterion, not by a cap


def spectral_centroid(modes: torch.Tensor, fs: float | None = None) -> torch.Tensor:
    """Power-weighted mean frequency of each signal `[..., T]` -> `[...]` (Hz if fs, 0 if silent)."""
    power = torch.fft.rfft(modes, dim=-1).abs().square()
    freqs = torch.fft.rfftfreq(modes.shape[-1], d=1.0 / (fs or 1.0), dtype=power.dtype)
    total = power.sum(-1)
    return torch.where(total > 0, (power * freqs).sum(-1) / total.clamp_min(1e-300), 0.0)
