"""Decomposition methods by name: VMD and the EMD family behind one call."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from feature_extractors.signal.decomposition import Decomposition
from feature_extractors.signal.emd import emd
from feature_extractors.signal.vmd import vmd

# name -> the decomposition, called as (x, num_modes=, fs=, **its own options)
DECOMPOSITIONS: dict[str, Callable[..., Decomposition]] = {
    "vmd": vmd,
    "emd": functools.partial(emd, method="emd"),
    "eemd": functools.partial(emd, method="eemd"),
    "ceemdan": functools.partial(emd, method="ceemdan"),
}


def decompose(
    x: torch.Tensor | np.ndarray,
    method: str = "vmd",
    *,
    num_modes: int = 5,
    fs: float | None = None,
    **options,
) -> Decomposition:
    """Modes of signals `x [..., T]` by `method` (a name in `DECOMPOSITIONS`), with the options
    that method takes; centre frequencies in Hz when `fs` is given."""
    if method not in DECOMPOSITIONS:
        raise ValueError(f"unknown method {method!r}; use one of {tuple(DECOMPOSITIONS)}.")
    return DECOMPOSITIONS[method](x, num_modes=num_modes, fs=fs, **options)
