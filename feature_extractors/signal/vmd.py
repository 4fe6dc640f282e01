"""Variational Mode Decomposition (Dragomiretskiy & Zosso, 2014), batched in torch.

Every leading dimension is a batch dimension: `[B, C, T]` recordings decompose in one call, on
the CPU or a GPU. Options follow MATLAB's `vmd` (its stopping rule included); the defaults are
the reference implementation's (`vmdpy`: no dual ascent, modes started on a frequency grid), with
its update order (Gauss-Seidel over modes, then dual ascent), so the modes match vmdpy's. The
default runs in float32, each iteration fused by `torch.compile` where that pays (eager where no
compiler is found); a signal's modes do not depend on the batch it is in. Differences from
`vmdpy`: odd lengths are kept whole (it drops the last sample), memory does not grow with the iteration count (it stores every iterate),
and each signal of a batch stops on its own convergence.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import time
from typing import Literal

import numpy as np
import torch

from feature_extractors.signal.decomposition import Decomposition

Init = Literal["peaks", "grid", "random", "zero"]


def vmd(
    x: torch.Tensor | np.ndarray,
    num_modes: int = 5,
    *,
    alpha: float = 1000.0,
    tau: float = 0.0,
    fs: float | None = None,
    max_iterations: int = 500,
    init: Init | torch.Tensor | np.ndarray | list[float] = "grid",
    initial_lm: torch.Tensor | None = None,
    abs_tol: float = 5e-6,
    rel_tol: float | None = 1e-3,
    dc: bool = False,
    dtype: torch.dtype | str = torch.float32,
    seed: int = 0,
    compile: bool | None = None,
) -> Decomposition:
    """Decompose signals along the last axis into `num_modes` band-limited modes.

    Args:
        x: signals `[..., T]` (array or tensor; a tensor stays on its device).
        num_modes: K, the number of modes (MATLAB ``NumIMFs``).
        alpha: bandwidth penalty (``PenaltyFactor``); larger gives narrower modes.
        tau: dual ascent step (``LMUpdateRate``; MATLAB's default is 0.01); 0, the default,
            lets the modes leave noise unexplained, which suits noisy recordings.
        fs: sample rate; centre frequencies (given and returned) are in Hz when set.
        max_iterations: cap on iterations (``MaxIterations``).
        init: initial centre frequencies: ``grid`` (k / 2K cycles per sample, as vmdpy's
            init=1), ``peaks`` (the K largest spectral peaks, the rest on the grid; MATLAB's
            default), ``random``
            (seeded, log-uniform), ``zero``, or K frequencies (``CentralFrequencies``).
        initial_lm: initial Lagrange multiplier, one-sided spectrum `[..., T]` (``InitialLM``).
        abs_tol: stop when the modes' squared change per iteration, summed over modes and divided
            by the mirrored length, is at most this (``AbsoluteTolerance``; vmdpy's ``tol``) ...
        rel_tol: ... and that change relative to the modes' energy is at most this
            (``RelativeTolerance``); None uses `abs_tol` alone, as vmdpy.
        dc: keep the first mode at 0 Hz.
        dtype: float32 (default) or float64 (a torch dtype or its name); the modes come back in it.
        seed: seed of ``random`` initialization.
        compile: fuse each iteration into one kernel with `torch.compile` (a C++ compiler on
            CPU, Triton on GPU; the first call compiles for some seconds, later ones run about 3x
            faster on CPU, see benchmarks/bench_signals.py). None (default) compiles where it
            pays: a call of at least 2^23 values (batch x modes x length), or a shape that
            earlier calls spent 4 s on; where compiling fails it runs eager. A batch that runs
            out of memory in the compiled iteration is split in two and run again.
    """
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)  # torch refuses negative strides
    dtype = _dtype(dtype)
    signal = torch.as_tensor(x).to(dtype)
    *lead, length = signal.shape
    if length < 2 * num_modes:
        raise ValueError(
            f"a signal of {length} samples cannot hold {num_modes} modes; use num_modes <= "
            f"{max(1, length // 2)} or longer signals."
        )
    flat = signal.reshape(-1, length)
    spectrum, freqs = _mirrored_spectrum(flat)
    omega = _initial_omega(init, spectrum, num_modes, fs, dc, seed, freqs)
    # Spectra as real [..., 2, T] (real, imaginary): every update is real, which torch.compile
    # fuses into one loop; the mode filters 1 / (1 + alpha (f - omega)^2) are real anyway.
    f = _real(spectrum)
    lam = None if initial_lm is None else _real(_lm(initial_lm, spectrum))
    shape = (flat.device.type, dtype, length, num_modes, float(alpha), dc)  # what a compile fixes
    if compile is None:
        compile = _worth_compiling(shape, flat.shape[0] * num_modes * length)
    started = time.perf_counter()
    modes_hat, omega, iterations, converged = _iterate(
        f, lam, omega, freqs, num_modes=num_modes, alpha=alpha, tau=tau, dc=dc,
        max_iterations=max_iterations, abs_tol=abs_tol, rel_tol=rel_tol,
        sweep=_compiled_sweep(flat.device.type) if compile else _sweep,
    )  # fmt: skip
    if compile and flat.device.type not in _EAGER_ONLY:
        _COMPILED.add(shape)
    else:
        _EAGER_SECONDS[shape] += time.perf_counter() - started
    modes = _modes(modes_hat, length)
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


def _mirrored_spectrum(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-sided spectrum `[B, T]` of each signal of `flat [B, T]` mirrored at both ends
    (length 2T), and its frequencies in cycles per sample `[T]`."""
    length = flat.shape[-1]
    half = length // 2
    mirrored = torch.cat([flat[:, :half].flip(-1), flat, flat[:, half:].flip(-1)], dim=-1)
    freqs = torch.arange(length, device=flat.device, dtype=flat.dtype) / (2 * length)
    return torch.fft.fft(mirrored)[:, :length], freqs


def _modes(modes_hat: torch.Tensor, length: int) -> torch.Tensor:
    """Time-domain modes `[B, K, T]` of one-sided mirrored spectra `[B, K, 2, T]`."""
    modes_hat = torch.complex(modes_hat[..., 0, :], modes_hat[..., 1, :])
    padded = torch.cat([modes_hat, torch.zeros_like(modes_hat[..., :1])], dim=-1)
    half = length // 2
    return torch.fft.irfft(padded, n=2 * length)[..., half : half + length]


def _iterate(
    f: torch.Tensor,
    lam: torch.Tensor | None,
    omega: torch.Tensor,
    freqs: torch.Tensor,
    *,
    num_modes: int,
    alpha: float,
    tau: float,
    dc: bool,
    max_iterations: int,
    abs_tol: float,
    rel_tol: float | None,
    sweep,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `sweep` until each signal converges or `max_iterations`; spectra `f [B, 2, T]`.

    Returns each signal's modes' spectra `[B, K, 2, T]`, centre frequencies `[B, K]`,
    iterations `[B]` and whether it converged `[B]`. Finished rows are dropped from the
    batch once they are a quarter of it."""
    batch, _, length = f.shape
    device = f.device
    base = f if lam is None else f - lam / 2  # what the modes share out: f - lambda / 2
    u = f.new_zeros(batch, num_modes, 2, length)
    modes_hat = torch.zeros_like(u)
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    converged = torch.zeros(batch, dtype=torch.bool, device=device)
    active = torch.arange(batch, device=device)  # the rows still iterated ...
    running = torch.ones(batch, dtype=torch.bool, device=device)  # ... and those not done
    w = omega.clone()
    for step in range(1, max_iterations + 1):
        u, w, rest, change, energy = sweep(u, base, w, freqs, alpha, dc)
        if tau:  # dual ascent: lambda += tau (sum of the modes - f), and sum = f - lambda/2 - rest
            lam = (torch.zeros_like(f) if lam is None else lam) - tau * (f - base + rest)
            base = f - lam / 2
        done = change <= abs_tol
        if rel_tol is not None:
            done &= change <= rel_tol * energy
        finished = running if step == max_iterations else done & running
        if finished.any():
            idx = active[finished]
            modes_hat[idx], omega[idx] = u[finished], w[finished]
            iterations[idx], converged[idx] = step, done[finished]
            running = running & ~finished
            left = int(running.sum())
            if left == 0:
                break
            if left <= 0.75 * len(running):  # drop the finished rows once they are a quarter
                keep = running
                active, u, w, f, base = active[keep], u[keep], w[keep], f[keep], base[keep]
                lam, running = None if lam is None else lam[keep], running[keep]
    return modes_hat, omega, iterations, converged


def _sweep(u, base, omega, freqs, alpha: float, dc: bool, fused: bool = False):
    """One iteration: a Gauss-Seidel sweep over the modes of spectra `u [B, K, 2, T]`.

    `base [B, 2, T]` is f - lambda/2. Returns the new modes and centre frequencies, what the
    modes leave of `base`, and the modes' squared change and energy, each divided by the
    mirrored length. `fused` (under torch.compile) stacks the modes at the end, which fuses
    better; eager writes each into place, which saves a copy. The numbers are the same.
    """
    change = torch.zeros_like(omega[:, 0])
    energy = torch.zeros_like(omega[:, 0])
    # each mode's filter 1 / (1 + alpha (f - omega_k)^2), as the divisor [B, K, 1, T]
    divisors = (freqs - omega.unsqueeze(-1)).square_().mul_(alpha).add_(1).unsqueeze(2)
    rest = base - u.sum(1)  # f - lambda/2 - sum of all modes, kept in place (faster eager)
    modes = None if fused else torch.empty_like(u)  # eager writes into it; fused code stacks
    stacked, centres = [], []
    for k in range(u.shape[1]):
        rest.add_(u[:, k])  # f - lambda/2 - the other modes
        new = torch.div(rest, divisors[:, k], out=None if fused else modes[:, k])
        rest.sub_(new)
        change += torch.sub(new, u[:, k]).square_().sum((1, 2))
        power = new.square().sum(1)
        mode_energy = power.sum(-1)
        energy += mode_energy
        if dc and k == 0:
            centres.append(omega[:, 0])
        else:  # centre of mass of the mode's power spectrum
            centres.append((power * freqs).sum(-1) / mode_energy)
        stacked.append(new)
    total = 2 * freqs.shape[0]
    return (
        torch.stack(stacked, dim=1) if fused else modes,
        torch.stack(centres, dim=1),
        rest,
        change / total + _SPACING,
        energy / total,
    )


_SPACING = float(np.spacing(1.0))  # vmdpy's floor under the change, whatever the dtype
# `compile=None`: a first compile costs about 4 s (26 s with torch.compile's disk cache empty)
# and makes the iterations about 3x faster (2 cores, benchmarks/bench_signals.py). It is done
# when it pays back within the call (from 2^23 values, batch x modes x length), or once calls of
# one shape have spent `_COMPILE_AFTER_SECONDS` eager; compiled shapes stay compiled.
_COMPILE_FROM = 2**23
_COMPILE_AFTER_SECONDS = 4.0
_COMPILED: set[tuple] = set()  # (device type, dtype, length, modes, alpha, dc) compiled
_EAGER_SECONDS: collections.Counter[tuple] = collections.Counter()
_EAGER_ONLY: set[str] = set()  # device types where compiling failed (not out of memory)


def _worth_compiling(shape: tuple, values: int) -> bool:
    """Whether `compile=None` compiles a call of `shape` over `values` numbers."""
    if shape[0] in _EAGER_ONLY:
        return False
    if shape in _COMPILED:
        return True
    return values >= _COMPILE_FROM or _EAGER_SECONDS[shape] >= _COMPILE_AFTER_SECONDS


def _compiled_sweep(device_type: str):
    """`_sweep` fused by torch.compile, falling back to eager where compiling fails."""
    compiled = _compiled()

    def sweep(u, base, omega, freqs, alpha, dc):
        if device_type in _EAGER_ONLY:
            return _sweep(u, base, omega, freqs, alpha, dc)
        alone = u.shape[0] == 1  # a batch of one gets a kernel of its own, which rounds
        if alone:  # otherwise: run it as two, so a signal's modes never depend on its batch
            u, base, omega = (torch.cat([t, t]) for t in (u, base, omega))
        for tensor in (u, base, omega):  # one kernel for every batch size the run shrinks to
            torch._dynamo.maybe_mark_dynamic(tensor, 0)
        try:
            out = compiled(u, base, omega, freqs, alpha, dc, True)
        except Exception as err:
            if not _out_of_memory(err):  # no C++ compiler or Triton here: unfused from now on
                _EAGER_ONLY.add(device_type)
                out = _sweep(u, base, omega, freqs, alpha, dc)
            elif not alone and len(u) > 1:  # rows are independent: half a batch at a time
                halves = [sweep(*(t.tensor_split(2)[i] for t in (u, base, omega)), freqs, alpha, dc)
                          for i in range(2)]  # fmt: skip
                out = tuple(torch.cat(parts) for parts in zip(*halves, strict=True))
            else:
                raise
        return tuple(t[:1] for t in out) if alone else out

    return sweep


def _out_of_memory(err: BaseException | None) -> bool:
    """Whether `err`, or an error it wraps (compilers wrap what they catch), is out of memory."""
    while err is not None:
        if isinstance(err, torch.OutOfMemoryError):
            return True
        err = err.__cause__ or err.__context__
    return False


@functools.cache
def _compiled():
    # inductor warns that it found no CUDA toolkit even when it builds for the CPU
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(_sweep)


def _real(spectrum: torch.Tensor) -> torch.Tensor:
    """Complex `[B, T]` as real `[B, 2, T]` (real part, imaginary part)."""
    return torch.view_as_real(spectrum).transpose(-1, -2).contiguous()


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype is float32 or float64, not {dtype!r}.")
        return getattr(torch, dtype)
    return dtype


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
