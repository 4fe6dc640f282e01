"""Empirical Mode Decomposition family (EMD, EEMD, CEEMDAN) through PyEMD, as a `Decomposition`.

PyEMD works on one 1-D signal at a time; this loops over the leading dimensions, keeps the
first `num_modes` intrinsic mode functions and returns them in the same layout as `vmd`: modes
sorted by increasing centre frequency, the rest of the signal (the trend) as the residual.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from PyEMD import CEEMDAN, EEMD, EMD

from feature_extractors.signal.decomposition import Decomposition, spectral_centroid

Method = Literal["emd", "eemd", "ceemdan"]


def emd(
    x: torch.Tensor | np.ndarray,
    num_modes: int = 5,
    *,
    method: Method = "emd",
    fs: float | None = None,
    trials: int = 100,
    noise_width: float = 0.05,
    spline: str = "cubic",
    seed: int = 0,
) -> Decomposition:
    """Decompose signals `[..., T]` into `num_modes` intrinsic mode functions.

    Args:
        x: signals `[..., T]` (array or tensor).
        num_modes: K, intrinsic mode functions kept (MATLAB ``MaxNumIMF``). When the sifting
            ends with fewer, the missing modes are zeros (see `Decomposition.iterations`).
        method: ``emd``; ``eemd`` (ensemble over noise-added copies); ``ceemdan`` (complete
            ensemble with adaptive noise).
        fs: sample rate; centre frequencies are in Hz when set.
        trials: ensemble size of eemd/ceemdan.
        noise_width: standard deviation of the added noise, relative to the signal's (eemd), or
            ceemdan's epsilon.
        spline: envelope interpolation, ``cubic``, ``akima``, ``pchip``, ... (PyEMD's kinds).
        seed: seed of the ensemble noise.
    """
    signal = torch.as_tensor(x).detach().cpu().to(torch.float64)
    *lead, length = signal.shape
    most = max(1, int(math.log2(max(length, 2))) - 1)
    if num_modes > most:
        raise ValueError(
            f"a signal of {length} samples yields at most about {most} intrinsic mode functions; "
            f"use num_modes <= {most} or longer signals."
        )
    flat = signal.reshape(-1, length).numpy()
    modes = np.zeros((len(flat), num_modes, length))
    found = np.zeros(len(flat), dtype=np.int64)
    for i, row in enumerate(flat):
        rows = _sift(row, num_modes, method, trials, noise_width, spline, seed)
        rows = rows[: min(num_modes, len(rows) - 1)]  # PyEMD's last row is what remains
        found[i] = len(rows)
        modes[i, num_modes - len(rows) :] = rows[::-1]  # high-to-low frequency -> increasing
    modes_t = torch.from_numpy(modes)
    residual = torch.from_numpy(flat) - modes_t.sum(1)
    result = Decomposition(
        modes=modes_t,
        residual=residual,
        center_frequencies=spectral_centroid(modes_t, fs),
        iterations=torch.from_numpy(found),
        converged=torch.tensor([_extrema(r) <= 2 for r in residual.numpy()]),
    )
    for name in ("modes", "residual", "center_frequencies", "iterations", "converged"):
        value = getattr(result, name)
        setattr(result, name, value.reshape((*lead, *value.shape[1:])))
    return result


def _sift(row, num_modes, method, trials, noise_width, spline, seed) -> np.ndarray:
    """PyEMD's rows for one signal: IMFs from high to low frequency, then what remains."""
    if method == "emd":
        return EMD(spline_kind=spline).emd(row, max_imf=num_modes)
    if method == "eemd":
        decomposer = EEMD(
            trials=trials, noise_width=noise_width, parallel=False, spline_kind=spline
        )
        decomposer.noise_seed(seed)
        return decomposer.eemd(row, max_imf=num_modes)
    if method == "ceemdan":
        decomposer = CEEMDAN(trials=trials, epsilon=noise_width, parallel=False, spline_kind=spline)
        decomposer.noise_seed(seed)
        return decomposer.ceemdan(row, max_imf=num_modes)
    raise ValueError(f"unknown method {method!r}; use 'emd', 'eemd' or 'ceemdan'.")


def _extrema(x: np.ndarray) -> int:
    """Number of strict local extrema: a residual with at most two is a trend."""
    d = np.diff(x)
    d = d[np.abs(d) > 1e-12 * max(1.0, float(np.abs(x).max()))]
    return int(np.count_nonzero(d[1:] * d[:-1] < 0))
