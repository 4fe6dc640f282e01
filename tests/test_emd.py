"""EMD family through PyEMD, in the same contract as VMD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from PyEMD import EMD

from feature_extractors import emd

FS = 1000.0
T = np.arange(1000) / FS
TONES = [np.cos(2 * np.pi * f * T) * a for f, a in ((2, 1.0), (24, 0.25), (288, 1 / 16))]
PAPER = sum(TONES)  # the VMD paper's test signal


def test_emd_separates_the_paper_signal_into_sorted_tones():
    result = emd(PAPER, num_modes=3, fs=FS)
    assert result.modes.shape == (3, 1000)
    for mode, true in zip(result.modes.numpy(), TONES, strict=True):
        assert np.corrcoef(mode, true)[0, 1] > 0.98
    assert_allclose(result.center_frequencies.numpy(), [2, 24, 288], rtol=0.03)
    assert_allclose((result.modes.sum(0) + result.residual).numpy(), PAPER, atol=1e-12)


def test_emd_modes_are_pyemds_imfs_in_increasing_frequency():
    x = PAPER + 0.5 * T
    ours = emd(x, num_modes=3)
    reference = EMD()
    reference.emd(x, max_imf=3)
    imfs, residue = reference.get_imfs_and_residue()
    assert_allclose(ours.modes.numpy(), imfs[::-1], atol=1e-12)
    assert_allclose(ours.residual.numpy(), residue, atol=1e-12)
    assert bool(ours.converged) == (np.count_nonzero(np.diff(np.sign(np.diff(residue)))) <= 2)


def test_fewer_imfs_than_asked_are_zero_modes_at_the_low_end():
    result = emd(np.sin(2 * np.pi * 50 * T) + T, num_modes=4)
    found = int(result.iterations)
    assert 1 <= found < 4
    assert torch.all(result.modes[: 4 - found] == 0)
    assert bool(result.converged)


@pytest.mark.parametrize("method", ["eemd", "ceemdan"])
def test_ensembles_are_seeded_and_batched(method: str):
    rng = np.random.default_rng(0)
    x = np.stack([PAPER, PAPER[::-1].copy()]) + 0.05 * rng.normal(size=(2, 1000))
    a = emd(x[:, :256], num_modes=3, method=method, trials=8, seed=1)
    b = emd(x[:, :256], num_modes=3, method=method, trials=8, seed=1)
    assert a.modes.shape == (2, 3, 256) and a.center_frequencies.shape == (2, 3)
    assert torch.equal(a.modes, b.modes)
    one = emd(x[1, :256], num_modes=3, method=method, trials=8, seed=1)
    assert_allclose(one.modes.numpy(), a.modes[1].numpy())


def test_bad_requests():
    with pytest.raises(ValueError, match="at most about 4 intrinsic mode functions"):
        emd(PAPER[:40], num_modes=6)
    with pytest.raises(ValueError, match="unknown method"):
        emd(PAPER, num_modes=2, method="hht")
