import warnings

import numpy as np
import pytest
import torch

from pipeline.models import kernel_features
from pipeline.models.hydra_features import HydraFeatures, _first_extreme
from pipeline.models.kernel_features import (
    KERNEL_POOLINGS,
    NUM_KERNELS,
    DilatedKernelFeatures,
    dilations,
    kernel_weights,
)
from pipeline.models.kernel_head import KernelHead

from conftest import plain_net


def test_each_kernel_has_three_twos_among_nine_minus_ones() -> None:
    weights = kernel_weights().squeeze(1)
    assert weights.shape == (84, 9)
    assert ((weights == 2).sum(1) == 3).all() and ((weights == -1).sum(1) == 6).all()
    assert len({tuple(row.tolist()) for row in weights}) == 84  # every choice of three taps


def test_dilations_grow_exponentially_and_share_out_the_features() -> None:
    values, counts = dilations(max_length=2000, num_features=10_000)
    assert values[0] == 1 and values == sorted(set(values))
    assert (values[-1] - 1) * 8 < 2000 <= (values[-1] * 2) * 8  # the widest window fits
    assert sum(counts) == 10_000 // NUM_KERNELS
    assert dilations(max_length=5, num_features=840) == ([1], [10])  # shorter than one window


def _fitted(channels: int, max_length: int, seed: int = 0) -> DilatedKernelFeatures:
    torch.manual_seed(seed)
    features = DilatedKernelFeatures(channels, 1000, max_length, seed=seed)
    features.fit(torch.randn(12, max_length, channels), torch.full((12,), max_length))
    return features


def test_a_feature_is_the_share_of_steps_where_the_kernel_output_exceeds_its_bias() -> None:
    """Recomputed by hand with numpy for both kinds of kernel at every dilation."""
    features = _fitted(channels=1, max_length=60)
    x = torch.randn(1, 50, 1)
    raw = features(x, torch.tensor([50])) * features.feature_std + features.feature_mean
    first = 0
    for index, (dilation, count) in enumerate(
        zip(features.dilations, features.counts, strict=True)
    ):
        for kernel in (0, 1):  # zero-padded at even dilations, inside windows only at odd ones
            taps = kernel_weights()[kernel, 0].numpy()
            padded = np.pad(x[0, :, 0].numpy(), 4 * dilation)
            output = np.array([
                padded[t : t + 8 * dilation + 1 : dilation] @ taps for t in range(50)
            ])  # fmt: skip
            if (kernel + index) % 2 and 8 * dilation < 50:
                output = output[4 * dilation : 50 - 4 * dilation]
            for j in range(count):
                bias = float(features.bias[first + kernel * count + j])
                expected = (output > bias).mean()
                assert abs(float(raw[0, first + kernel * count + j]) - expected) < 1e-5
        first += NUM_KERNELS * count


def test_padding_never_changes_a_samples_features() -> None:
    features = _fitted(channels=3, max_length=80)
    short, long, tiny = torch.randn(1, 37, 3), torch.randn(1, 80, 3), torch.randn(1, 4, 3)
    batch = torch.cat([
        torch.nn.functional.pad(short, (0, 0, 0, 43), value=7.0),
        long,
        torch.nn.functional.pad(tiny, (0, 0, 0, 76), value=-3.0),
    ])  # fmt: skip
    together = features(batch, torch.tensor([37, 80, 4]))
    for row, (x, n) in enumerate([(short, 37), (long, 80), (tiny, 4)]):
        torch.testing.assert_close(together[row : row + 1], features(x, torch.tensor([n])))


def test_fit_standardizes_the_training_features() -> None:
    torch.manual_seed(1)
    features = DilatedKernelFeatures(2, 2000, 100)
    x, lengths = torch.randn(40, 100, 2), torch.randint(30, 101, (40,))
    features.fit(x, lengths)
    out = features(x, lengths)
    varying = features.feature_std > 1e-3
    assert out.mean(0).abs().max() < 1e-4
    torch.testing.assert_close(out[:, varying].std(0), torch.ones(int(varying.sum())))


def test_a_linear_model_on_the_features_tells_frequencies_apart() -> None:
    """Same mean and spread, random phase: only the shape differs."""
    generator = torch.Generator().manual_seed(0)

    def waves(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 2, (n,), generator=generator)
        phase = torch.rand(n, 1, generator=generator) * 2 * torch.pi
        t = torch.arange(120.0)
        x = torch.sin(2 * torch.pi * t / torch.where(labels[:, None] == 1, 12.0, 20.0) + phase)
        return (x + 0.3 * torch.randn(n, 120, generator=generator)).unsqueeze(-1), labels

    (x_train, y_train), (x_test, y_test) = waves(40), waves(100)
    features = DilatedKernelFeatures(1, 1000, 120)
    features.fit(x_train, torch.full((40,), 120))
    design = torch.cat([features(x_train, torch.full((40,), 120)), torch.ones(40, 1)], dim=1)
    weights = torch.linalg.lstsq(design, 2.0 * y_train[:, None] - 1, driver="gelsd").solution
    test = torch.cat([features(x_test, torch.full((100,), 120)), torch.ones(100, 1)], dim=1)
    assert ((test @ weights).squeeze(1) > 0).eq(y_test.bool()).float().mean() >= 0.95


def test_features_are_bitwise_the_same_under_bf16_autocast() -> None:
    """Fitted and applied in float32 whatever autocast says: training in bf16-mixed sees the
    features that float32 inference computes."""
    x, lengths = torch.randn(6, 80, 3), torch.tensor([80, 80, 51, 37, 12, 4])
    plain = _fitted(channels=3, max_length=80)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = _fitted(channels=3, max_length=80)
        mixed_features = mixed(x, lengths)
    assert torch.equal(mixed.bias, plain.bias) and torch.equal(mixed.feature_std, plain.feature_std)
    assert mixed_features.dtype == torch.float32
    assert torch.equal(mixed_features, plain(x, lengths))


def test_kernel_outputs_are_float32_on_a_gpu_too(monkeypatch) -> None:
    """cuDNN's TF32 (its default on Ampere and later) is off while the kernels run, so a GPU
    compares their outputs with the biases at float32 precision, as the CPU does."""
    tf32_at_each_convolution = []
    convolve = torch.nn.functional.conv1d

    def conv1d(*args, **kwargs):
        tf32_at_each_convolution.append(torch.backends.cudnn.allow_tf32)
        return convolve(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv1d", conv1d)
    x, lengths = torch.randn(4, 50, 3), torch.tensor([50, 40, 20, 9])
    _fitted(channels=3, max_length=50)(x, lengths)
    hydra = HydraFeatures(3, 50)
    hydra.fit(x, lengths)
    hydra(x, lengths)
    assert torch.backends.cudnn.allow_tf32  # the process's setting, as it was
    assert tf32_at_each_convolution and not any(tf32_at_each_convolution)


def test_standardized_pooled_outputs_are_the_features() -> None:
    features = _fitted(channels=2, max_length=60)
    x, lengths = torch.randn(5, 60, 2), torch.tensor([60, 45, 30, 9, 2])
    pooled = features.pooled(x, lengths)
    assert pooled.dtype == torch.float32 and 0 <= float(pooled.min()) <= float(pooled.max()) <= 1
    assert torch.equal(features.standardize(pooled), features(x, lengths))


def _multirocket_layout(length: int) -> tuple[KernelHead, np.ndarray, np.ndarray]:
    """Our kernel head with the dilations and biases of aeon's MultiRocket (fitted to random
    series), the pooled outputs of new series, and MultiRocket's features of the same series.

    MultiRocket pools the first difference too, but aeon's transform shifts the difference's
    leading taps by one step (its loop bound is the series' length, not the difference's), so
    our difference part is compared with MultiRocket's series part run on `np.diff` instead.
    """
    multirocket = pytest.importorskip("aeon.transformations.collection.convolution_based")
    rng = np.random.default_rng(0)
    train, test = (rng.standard_normal((n, 1, length)).astype(np.float32) for n in (8, 5))
    head = KernelHead(1, 2 * 4 * 4 * NUM_KERNELS, length, 2, pooling=("ppv", "lspv", "mpv", "mipv"),
                      difference=True)  # fmt: skip
    theirs = []
    for part, (fit_on, apply_to) in zip(
        (head.kernels, head.difference_kernels),
        ((train, test), (np.diff(train), np.diff(test))),
        strict=True,
    ):  # fmt: skip
        reference = multirocket.MultiRocket(n_kernels=4 * NUM_KERNELS, random_state=0).fit(fit_on)
        dilation_list, counts, biases = reference.parameter
        assert (part.dilations, part.counts) == (dilation_list.tolist(), counts.tolist())
        part.bias.copy_(torch.from_numpy(biases))
        theirs.append(reference.transform(apply_to)[:, : part.num_features])  # the series part
    x = torch.from_numpy(test).transpose(1, 2)
    ours = head.pooled(x, torch.full((len(x),), length)).numpy()
    return head, ours, np.concatenate(theirs, axis=1)


def test_pooling_matches_aeon_multirocket_on_the_series_and_its_first_difference() -> None:
    """PPV, LSPV, MPV and MIPV, over the series and its first difference, as aeon computes them
    (aeon's MPV is the mean of output + bias over the positive steps: 2 biases above ours)."""
    head, ours, theirs = _multirocket_layout(length=60)
    biases = torch.cat([head.kernels.bias, head.difference_kernels.bias]).numpy()
    per_pooling = lambda f: f.reshape(len(f), 2, 4, -1)  # noqa: E731 series x pooling x bias
    ours, theirs = per_pooling(ours), per_pooling(theirs)
    ppv, lspv, mpv, mipv = (theirs[:, :, p] for p in range(4))
    np.testing.assert_allclose(ours[:, :, 0], ppv, atol=1e-6)
    np.testing.assert_array_equal(ours[:, :, 1], lspv)
    mpv_ours = np.where(ppv > 0, mpv - 2 * biases.reshape(2, -1), 0)
    np.testing.assert_allclose(ours[:, :, 2], mpv_ours, atol=1e-4)
    np.testing.assert_allclose(ours[:, :, 3], mipv, atol=1e-4)
    assert (ppv > 0).any() and (ppv < 1).any() and (lspv > 1).any()  # a test that can fail


@pytest.mark.parametrize("difference", [False, True])
def test_every_pooling_is_the_same_alone_or_padded_in_a_batch(difference: bool) -> None:
    torch.manual_seed(0)
    head = KernelHead(3, 4 * 4 * NUM_KERNELS, 80, 2, pooling=KERNEL_POOLINGS, difference=difference)
    head.fit(torch.randn(12, 80, 3), torch.full((12,), 80))
    samples = [torch.randn(1, n, 3) for n in (37, 80, 4, 1)]
    batch = torch.cat([torch.nn.functional.pad(s, (0, 0, 0, 80 - s.shape[1]), value=5.0)
                       for s in samples])  # fmt: skip
    together = head.features(batch, torch.tensor([37, 80, 4, 1]))
    assert torch.isfinite(together).all()
    for row, x in enumerate(samples):
        alone = head.features(x, torch.tensor([x.shape[1]]))
        torch.testing.assert_close(together[row : row + 1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("part", [DilatedKernelFeatures, HydraFeatures])
def test_long_series_pooled_a_few_samples_at_a_time_give_the_same_features(
    part: type, monkeypatch
) -> None:
    """Pooled in chunks of samples whose kernel outputs fit the CPU's caches: as one batch."""
    torch.manual_seed(0)
    features = part(3, 200) if part is HydraFeatures else part(3, 2 * NUM_KERNELS * 8, 200)
    x, lengths = torch.randn(5, 200, 3), torch.tensor([200, 150, 3, 199, 64])
    features.fit(x, lengths)
    whole = features.pooled(x, lengths)
    calls = []
    pool = features._pooled
    monkeypatch.setattr(features, "_pooled", lambda x, n: calls.append(len(x)) or pool(x, n))
    monkeypatch.setitem(kernel_features.CHUNK_VALUES, "cpu", NUM_KERNELS * 200 * 2)
    chunked = features.pooled(x, lengths)
    assert calls and max(calls) < 5 and sum(calls) == 5, calls
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_an_absent_stream_gets_the_features_of_zeros() -> None:
    """What `without_streams` writes in place of a lost stream's features is what the kernels
    give when that stream's channels are zero (their training mean), for every pooling."""
    torch.manual_seed(0)
    head = KernelHead(5, 4 * 4 * NUM_KERNELS, 50, 2, streams=[3, 2], pooling=KERNEL_POOLINGS,
                      difference=True)  # fmt: skip
    head.fit(torch.randn(10, 50, 5), torch.full((10,), 50))
    x, lengths = torch.randn(3, 50, 5), torch.tensor([50, 31, 2])
    missing = torch.tensor([[True, False], [False, True], [True, False]])
    zeroed = x.clone()
    zeroed[0, :, :3] = zeroed[1, :, 3:] = zeroed[2, :, :3] = 0.0
    replaced = head.without_streams(head.features(x, lengths), missing, lengths)
    torch.testing.assert_close(replaced, head.features(zeroed, lengths), atol=1e-5, rtol=1e-5)


def test_hydra_counts_match_aeon_hydra() -> None:
    """With aeon's kernels, the same counts as aeon's HydraTransformer on equal-length data."""
    convolution_based = pytest.importorskip("aeon.transformations.collection.convolution_based")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 70)).astype(np.float32)
    reference = convolution_based.HydraTransformer(random_state=0).fit(x)
    hydra = HydraFeatures(1, 70)
    assert len(hydra.dilations) == reference._hydra.num_dilations
    hydra.weight.copy_(reference._hydra.W)
    ours = hydra.pooled(torch.from_numpy(x).transpose(1, 2), torch.full((6,), 70))
    torch.testing.assert_close(ours, reference.transform(x), atol=1e-4, rtol=1e-5)


def test_hydra_is_the_same_alone_or_padded_and_without_a_stream() -> None:
    torch.manual_seed(0)
    hydra = HydraFeatures(5, 60, streams=[3, 2])
    hydra.fit(torch.randn(10, 60, 5), torch.full((10,), 60))
    samples = [torch.randn(1, n, 5) for n in (60, 23, 2)]
    batch = torch.cat([torch.nn.functional.pad(s, (0, 0, 0, 60 - s.shape[1]), value=4.0)
                       for s in samples])  # fmt: skip
    lengths = torch.tensor([60, 23, 2])
    together = hydra(batch, lengths)
    for row, x in enumerate(samples):
        torch.testing.assert_close(together[row : row + 1], hydra(x, lengths[row : row + 1]))
    missing = torch.tensor([[True, False], [False, True], [False, False]])
    zeroed = batch.clone()
    zeroed[0, :, :3] = zeroed[1, :, 3:] = 0.0
    torch.testing.assert_close(hydra.without_streams(together, missing, lengths),
                               hydra(zeroed, lengths))  # fmt: skip


def test_a_traced_net_with_every_kernel_feature_gives_the_same_logits_at_other_lengths() -> None:
    """`seqclass export` traces the model at one length: the poolings, the first difference
    and Hydra's counts must follow the lengths they are given."""
    torch.manual_seed(0)
    net = plain_net(2, 3, max_length=60, kernel_features=4 * 4 * NUM_KERNELS,
                    kernel_pooling=list(KERNEL_POOLINGS), kernel_difference=True,
                    kernel_hydra=True).eval()  # fmt: skip
    net.fit_kernel_features(torch.randn(8, 60, 2), torch.full((8,), 60))
    torch.nn.init.normal_(net.kernel_head.linear.weight)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (torch.randn(1, 16, 2), torch.tensor([16])))
    x, lengths = torch.randn(2, 41, 2), torch.tensor([41, 29])
    torch.testing.assert_close(traced(x, lengths), net(x, lengths), atol=1e-4, rtol=1e-4)


def test_fitting_reports_each_sample_once_a_part_and_scales_as_one_pass_would() -> None:
    """`fit` hears of its progress (the bar of `fit` on long series): every sample once for
    each part, in batches; the features it then gives are standardized over the samples."""
    torch.manual_seed(0)
    net = plain_net(2, 3, max_length=60, kernel_features=2 * NUM_KERNELS,
                    kernel_difference=True, kernel_hydra=True).eval()  # fmt: skip
    x, lengths = torch.randn(20, 60, 2), torch.full((20,), 60)
    heard: list[int] = []
    net.fit_kernel_features(x, lengths, heard.append)
    assert net.kernel_head.fitting_passes == 3
    assert sum(heard) == 20 * 3 and max(heard) == 16  # batches of 16 samples
    features = net.kernel_head.features(net.normalize(x), lengths)
    used = features.std(0) > 0  # a feature constant over the samples stays at 0
    torch.testing.assert_close(features.mean(0), torch.zeros(len(used)), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        features.std(0)[used], torch.ones(int(used.sum())), atol=1e-3, rtol=0
    )


def test_hydras_winners_on_a_cpu_are_those_max_and_min_give_ties_included() -> None:
    torch.manual_seed(0)
    outputs = torch.randn(3, 4, 8, 50).round(decimals=1)  # many ties between kernels
    outputs[:, :, :, :10] = 0.0  # every kernel ties, as on zero padding
    for largest, reference in ((True, outputs.max(2)), (False, outputs.min(2))):
        extreme, kernel = _first_extreme(outputs, largest)
        assert torch.equal(extreme, reference.values) and torch.equal(kernel, reference.indices)
    assert (outputs == outputs.amax(2, keepdim=True)).sum(2).gt(1).any()  # ties were there
