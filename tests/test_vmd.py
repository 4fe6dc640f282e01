import collections
import importlib

import numpy as np
import pytest
import torch

from feature_extractors.signal import vmd

vmd_module = importlib.import_module("feature_extractors.signal.vmd")  # the function shadows it

FS = 1000
T = np.arange(1000) / FS
PAPER = [
    np.cos(2 * np.pi * 2 * T),
    np.cos(2 * np.pi * 24 * T) / 4,
    np.cos(2 * np.pi * 288 * T) / 16,
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recovers_the_vmd_paper_signal(dtype: str) -> None:
    result = vmd(sum(PAPER), 3, alpha=2000, fs=FS, dtype=dtype)  # the defaults otherwise
    np.testing.assert_allclose(result.center_frequencies.numpy(), [2, 24, 288], rtol=0.01)
    for mode, component in zip(result.modes.numpy(), PAPER, strict=True):
        assert np.corrcoef(mode, component)[0, 1] > 0.99
    exact = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(result.modes.sum(0) + result.residual, sum(PAPER), atol=exact)
    assert result.converged.item() and result.iterations.item() < 500


def signals(count: int, length: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / FS
    tones = [
        sum(
            rng.uniform(0.2, 1) * np.cos(2 * np.pi * rng.uniform(1, 300) * t + rng.uniform(0, 6))
            for _ in range(3)
        )  # fmt: skip
        for _ in range(count)
    ]
    return np.stack(tones) + noise * rng.normal(size=(count, length))


def test_matches_vmdpy_in_its_own_setting() -> None:
    vmdpy = pytest.importorskip("vmdpy")
    # noise-free: vmdpy's reconstruction also puts its top bin at Nyquist, which noise would fill
    x = signals(4, 600, noise=0.0)
    for xi in x:
        modes, _, omega = vmdpy.VMD(xi, 2000, 0.0, 4, 0, 1, 1e-7)
        # vmdpy returns the iterate before its last: run that many iterations, no early stop
        ours = vmd(xi, 4, alpha=2000, abs_tol=0, max_iterations=len(omega) - 1, dtype="float64")
        order = np.argsort(omega[-1])
        assert np.abs(ours.modes.numpy() - modes[order]).max() <= 1e-6 * np.abs(xi).max()
    options = {"alpha": 2000, "abs_tol": 1e-7, "rel_tol": None, "dtype": torch.float64}
    together = vmd(x, 4, **options)
    alone = [vmd(xi, 4, **options) for xi in x]
    # each item of a batch stops on its own convergence, exactly as it would alone
    assert together.iterations.tolist() == [a.iterations.item() for a in alone]
    assert len(set(together.iterations.tolist())) > 1
    assert torch.equal(together.modes, torch.stack([a.modes for a in alone]))  # bitwise


def test_the_plain_call_gives_vmdpys_modes_on_noisy_signals() -> None:
    vmdpy = pytest.importorskip("vmdpy")
    x = signals(6, 1000, seed=1, noise=0.1)
    ours = vmd(x, 5, alpha=2000)  # float32, MATLAB's stopping rule
    assert ours.modes.dtype == torch.float32
    correlations = []
    for xi, modes in zip(x, ours.modes.numpy(), strict=True):
        theirs, _, omega = vmdpy.VMD(xi, 2000, 0.0, 5, 0, 1, 1e-7)
        for a, b in zip(modes, theirs[np.argsort(omega[-1])], strict=True):
            correlations.append(np.corrcoef(a, b)[0, 1])
    assert np.median(correlations) >= 0.99 and np.mean(np.array(correlations) > 0.9) >= 0.9


def test_any_leading_dims_odd_lengths_float32_and_given_frequencies() -> None:
    x = torch.as_tensor(signals(6, 501)).reshape(2, 3, 501)
    result = vmd(x, 3, fs=FS, max_iterations=50)
    assert result.modes.shape == (2, 3, 3, 501) and result.center_frequencies.shape == (2, 3, 3)
    assert result.residual.shape == (2, 3, 501) and result.iterations.shape == (2, 3)
    torch.testing.assert_close(result.modes.sum(-2) + result.residual, x.float())
    single = vmd(x.float(), 3, fs=FS, init=[10.0, 100.0, 200.0], dtype=torch.float32)
    assert single.modes.dtype == torch.float32
    assert torch.all(single.center_frequencies.diff(dim=-1) >= 0)  # sorted by frequency


def test_bad_arguments_say_what_to_change() -> None:
    with pytest.raises(ValueError, match="num_modes <= 5"):
        vmd(np.ones(10), 6)
    with pytest.raises(ValueError, match="2 centre frequencies for 3 modes"):
        vmd(np.ones(100), 3, init=[1.0, 2.0])
    with pytest.raises(ValueError, match="unknown init"):
        vmd(np.ones(100), 3, init="middle")


def test_compiled_iterations_match_eager():
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(3, 256)))
    options = {"num_modes": 3, "alpha": 500, "tau": 0.01, "max_iterations": 40, "dtype": "float64"}
    eager = vmd(x, **options, compile=False)
    fused = vmd(x, **options, compile=True)
    torch.testing.assert_close(fused.modes, eager.modes, rtol=0, atol=1e-9)
    assert torch.equal(fused.iterations, eager.iterations)
    for i in range(3):  # a signal's modes do not depend on its batch (alone: a batch of one)
        assert torch.equal(vmd(x[i], **options, compile=True).modes, fused.modes[i])


def test_a_compiler_that_fails_leaves_the_eager_iteration(monkeypatch):
    def no_compiler(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(vmd_module, "_compiled", lambda: no_compiler)
    monkeypatch.setattr(vmd_module, "_EAGER_ONLY", set())
    x = signals(2, 300)
    fused = vmd(x, 3, compile=True)
    torch.testing.assert_close(fused.modes, vmd(x, 3, compile=False).modes, rtol=0, atol=0)
    assert sorted(vmd_module._EAGER_ONLY) == ["cpu"]


def test_out_of_memory_in_the_compiled_iteration_splits_the_batch(monkeypatch):
    """Out of memory is not "no compiler": the batch is run in halves, still compiled."""
    seen = []

    def small_device(u, *args):  # a compiled sweep on a device that holds 2 rows at most
        seen.append(len(u))
        if len(u) > 2:
            raise RuntimeError("compiled kernel failed") from torch.OutOfMemoryError("CUDA OOM")
        return vmd_module._sweep(u, *args)

    monkeypatch.setattr(vmd_module, "_compiled", lambda: small_device)
    monkeypatch.setattr(vmd_module, "_EAGER_ONLY", set())
    x = signals(6, 300)
    split = vmd(x, 3, compile=True)
    assert set() == vmd_module._EAGER_ONLY and max(seen) == 6 and 2 in seen
    torch.testing.assert_close(split.modes, vmd(x, 3, compile=False).modes, rtol=0, atol=1e-6)


def test_the_plain_call_compiles_only_where_it_pays(monkeypatch):
    """A small first call stays eager; a shape that has cost enough eager time compiles, and
    stays compiled; a call large enough to pay for its own compile compiles at once."""
    compiled = []

    def fused(u, *args):
        compiled.append(len(u))
        return vmd_module._sweep(u, *args)

    monkeypatch.setattr(vmd_module, "_compiled", lambda: fused)
    for name, value in (("_COMPILED", set()), ("_EAGER_SECONDS", collections.Counter()),
                        ("_EAGER_ONLY", set()), ("_COMPILE_AFTER_SECONDS", 0.05)):  # fmt: skip
        monkeypatch.setattr(vmd_module, name, value)
    x = signals(4, 300)
    vmd(x, 3)
    assert compiled == []  # 3600 values: eager
    while not compiled:  # eager calls of this shape add up to 0.05 s: then it compiles
        vmd(x, 3)
    assert compiled[0] == 4
    calls = len(compiled)
    vmd(x, 3)  # compiled from now on
    assert compiled[calls] == 4
    calls = len(compiled)
    vmd(x[:1], 3, alpha=999.0)  # another shape, small: eager
    assert len(compiled) == calls
    monkeypatch.setattr(vmd_module, "_COMPILE_FROM", 3 * 200)
    vmd(x[:1, :200], 3)  # large enough to pay for itself
    assert compiled[calls] == 2  # a lone signal runs as two
