import numpy as np
import torch

from pipeline.models.kernel_features import (
    NUM_KERNELS,
    DilatedKernelFeatures,
    dilations,
    kernel_weights,
)


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


def test_standardized_counts_are_the_features() -> None:
    features = _fitted(channels=2, max_length=60)
    x, lengths = torch.randn(5, 60, 2), torch.tensor([60, 45, 30, 9, 2])
    counts = features.positive_counts(x, lengths)
    assert counts.dtype == torch.int64 and int(counts.max()) <= 60
    assert torch.equal(features.standardize(counts.to(torch.int16), lengths), features(x, lengths))
