"""Variational Mode Decomposition (Dragomiretskiy & Zosso, 2014), batched in torch.

Every leading dimension is a batch dimension: `[B, C, T]` recordings decompose in one call, on
the CPU or a GPU. Options and defaults follow MATLAB's `vmd`; the update order is the reference
implementation's (Gauss-Seidel over modes, then dual ascent), so with its initialization and
stopping rule the modes match `vmdpy`. Differences from `vmdpy`: odd lengths are kept whole (it
drops the last sample), memory does not grow with the iteration count (it stores every iterate),
and each signal of a batch stops on its own convergence.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import torch

from feature_extractors.signal.decomposition import Decomposition

Init = Literal["peaks", "grid", "random", "zero"]


def vmd(
    x: torch.Tensor | np.ndarray,
    num_modes: int = 5,
    alpha: float = 1000.0,
    tau: float = 0.01,
    fs: float | None = None,
    max_iterations: int = 500,
    init: Init | torch.Tensor | np.ndarray | list[float] = "peaks",
    initial_lm: torch.Tensor | None = None,
    abs_tol: float = 5e-6,
    rel_tol: float | None = 1e-3,
    dc: bool = False,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    compile: bool = False,
) -> Decomposition:
    """Decompose signals along the last axis into `num_modes` band-limited modes.

    Args:
        x: signals `[..., T]` (array or tensor; a tensor stays on its device).
        num_modes: K, the number of modes (MATLAB ``NumIMFs``).
        alpha: bandwidth penalty (``PenaltyFactor``); larger gives narrower modes.
        tau: dual ascent step (``LMUpdateRate``); 0 lets the modes leave some noise unexplained.
        fs: sample rate; centre frequencies (given and returned) are in Hz when set.
        max_iterations: cap on iterations (``MaxIterations``).
        init: initial centre frequencies: ``peaks`` (the K largest spectral peaks, the rest on
            the grid), ``grid`` (k / 2K cycles per sample, as vmdpy's init=1), ``random``
            (seeded, log-uniform), ``zero``, or K frequencies (``CentralFrequencies``).
        initial_lm: initial Lagrange multiplier, one-sided spectrum `[..., T]` (``InitialLM``).
        abs_tol: stop when the modes' squared change per iteration, summed over modes and divided
            by the mirrored length, is at most this (``AbsoluteTolerance``; vmdpy's ``tol``) ...
        rel_tol: ... and that change relative to the modes' energy is at most this
            (``RelativeTolerance``); None uses `abs_tol` alone, as vmdpy.
        dc: keep the first mode at 0 Hz.
        dtype: float64 (default) or float32.
        seed: seed of ``random`` initialization.
        compile: fuse each iteration into one kernel with `torch.compile` (needs a C++
            compiler on CPU; the first call of a shape compiles for a few seconds, later ones
            run 5x faster on CPU, see benchmarks/bench_vmd.py).
    """
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)  # torch refuses negative strides
    signal = torch.as_tensor(x).to(dtype)
    *lead, length = signal.shape
    if length < 2 * num_modes:
        raise ValueError(
            f"a signal of {length} samples cannot hold {num_modes} modes; use num_modes <= "
            f"{max(1, length // 2)} or longer signals."
        )
    flat = signal.reshape(-1, length)
    half = length // 2
    mirrored = torch.cat([flat[:, :half].flip(-1), flat, flat[:, half:].flip(-1)], dim=-1)
    total = mirrored.shape[-1]  # 2 * length: the one-sided spectrum has `length` bins
    spectrum = torch.fft.fft(mirrored)[:, :length]
    freqs = torch.arange(length, device=flat.device, dtype=dtype) / total
    omega = _initial_omega(init, spectrum, num_modes, fs, dc, seed, freqs)
    lam = torch.zeros_like(spectrum) if initial_lm is None else _lm(initial_lm, spectrum)

    batch = flat.shape[0]
    # Spectra as real [..., 2, T] (real, imaginary): every update is real, which torch.compile
    # can fuse; the mode filters 1 / (1 + alpha (f - omega)^2) are real anyway.
    f = torch.view_as_real(spectrum).transpose(-1, -2).contiguous()  # B x 2 x T
    lam_a = torch.view_as_real(lam).transpose(-1, -2).contiguous()
    u = torch.zeros(batch, num_modes, 2, length, dtype=dtype, device=flat.device)
    modes_hat = torch.zeros_like(u)
    iterations = torch.zeros(batch, dtype=torch.long, device=flat.device)
    converged = torch.zeros(batch, dtype=torch.bool, device=flat.device)
    active = torch.arange(batch, device=flat.device)
    w = omega.clone()
    sweep = _compiled_sweep() if compile else _sweep
    for step in range(1, max_iterations + 1):
        u, w, lam_a, change, energy = sweep(u, f, w, lam_a, freqs, alpha, tau, dc)
        done = change <= abs_tol
        if rel_tol is not None:
            done &= change <= rel_tol * energy
        finished = torch.ones_like(done) if step == max_iterations else done
        if finished.any():
            idx = active[finished]
            modes_hat[idx], omega[idx] = u[finished], w[finished]
            iterations[idx], converged[idx] = step, done[finished]
            keep = ~finished
            active, u, f, w, lam_a = active[keep], u[keep], f[keep], w[keep], lam_a[keep]
        if active.numel() == 0:
            break

    modes_hat = torch.complex(modes_hat[..., 0, :], modes_hat[..., 1, :])
    padded = torch.cat([modes_hat, torch.zeros_like(modes_hat[..., :1])], dim=-1)
    modes = torch.fft.irfft(padded, n=total)[..., half : half + length]
    order = omega.argsort(dim=-1)
    modes = modes.gather(1, order[..., None].expand_as(modes))
    omega = omega.gather(1, order)
    centre = omega * fs if fs is not None else omega
    return Decomposition(
        modes=modes.reshape(*lead, num_modes, length),
        residual=(flat - modes.sum(1)).reshape(*lead, length),
        center_frequencies=centre.reshape(*lead, num_modes),
        iterations=iterations.reshape(lead),
        converged=converged.reshape(lead),
    )


def _sweep(u, f, omega, lam, freqs, alpha: float, tau: float, dc: bool):
    """One iteration: a sweep over the modes (Gauss-Seidel), then dual ascent.

    Spectra are real `[B, (K,) 2, T]`. Returns the new modes, centre frequencies and multiplier,
    and the modes' squared change and energy, each divided by the mirrored length.
    """
    rest = f - lam / 2 - u.sum(1)  # f - lambda/2 - sum of all modes
    change = torch.zeros_like(omega[:, 0])
    energy = torch.zeros_like(omega[:, 0])
    modes, centres = [], []
    for k in range(u.shape[1]):
        target = rest + u[:, k]  # f - lambda/2 - the other modes
        new = target / (alpha * (freqs - omega[:, k : k + 1]).square() + 1).unsqueeze(1)
        change = change + (new - u[:, k]).square().sum((1, 2))
        rest = target - new
        power = new.square().sum(1)
        energy = energy + power.sum(-1)
        if dc and k == 0:
            centres.append(omega[:, 0])
        else:  # centre of mass of the mode's power spectrum
            centres.append((power * freqs).sum(-1) / power.sum(-1))
        modes.append(new)
    # dual ascent on the new modes' sum, which is f - lambda/2 - rest
    lam = lam - tau * (lam / 2 + rest)
    total = 2 * freqs.shape[0]
    eps = torch.finfo(u.dtype).eps
    return (
        torch.stack(modes, dim=1),
        torch.stack(centres, dim=1),
        lam,
        change / total + eps,
        energy / total,
    )


@functools.cache
def _compiled_sweep():
    return torch.compile(_sweep)


def _initial_omega(init, spectrum, k, fs, dc, seed, freqs) -> torch.Tensor:
    batch, device, dtype = spectrum.shape[0], spectrum.device, freqs.dtype
    grid = torch.arange(k, device=device, dtype=dtype) * (0.5 / k)
    if isinstance(init, str):
        if init == "grid":
            omega = grid.expand(batch, k).clone()
        elif init == "zero":
            omega = torch.zeros(batch, k, device=device, dtype=dtype)
        elif init == "random":
            g = torch.Generator().manual_seed(seed)
            low = math.log(1 / (2 * freqs.shape[0]))
            r = torch.rand(batch, k, generator=g, dtype=dtype)
            omega = torch.exp(low + (math.log(0.5) - low) * r).sort(-1).values.to(device)
        elif init == "peaks":
            omega = _peak_frequencies(spectrum.abs().square(), freqs, grid)
        else:
            raise ValueError(f"unknown init {init!r}; use peaks, grid, random, zero or frequencies")
    else:
        given = torch.as_tensor(init, dtype=dtype, device=device).reshape(-1)
        if given.numel() != k:
            raise ValueError(f"init gives {given.numel()} centre frequencies for {k} modes")
        omega = (given / fs if fs is not None else given).expand(batch, k).clone()
    if dc:
        omega[:, 0] = 0
    return omega


def _peak_frequencies(power: torch.Tensor, freqs: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The K largest local maxima of each power spectrum, the missing ones from `grid`, sorted."""
    k = grid.shape[0]
    inner = power[:, 1:-1]
    is_peak = (inner > power[:, :-2]) & (inner >= power[:, 2:])
    score = torch.where(is_peak, inner, torch.full_like(inner, -1.0))
    top, where = score.topk(min(k, score.shape[1]), dim=-1)
    found = freqs[1:-1][where]
    omega = torch.where(top >= 0, found, grid[: top.shape[1]].expand_as(found))
    if omega.shape[1] < k:
        omega = torch.cat([omega, grid[omega.shape[1] :].expand(omega.shape[0], -1)], dim=1)
    return omega.sort(-1).values


def _lm(initial_lm: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
    lm = torch.as_tensor(initial_lm).to(spectrum.device, spectrum.dtype)
    return lm.reshape(-1, spectrum.shape[-1]).expand_as(spectrum).clone()
