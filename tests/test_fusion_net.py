"""Fused streams in one network: exact under padding, each stream counted, stream dropout."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.kernel_features import DilatedKernelFeatures
from pipeline.models.sequence_net import SequenceNet

from conftest import plain_net

STREAMS = [40, 3]  # a wide video stream beside a narrow sensor one


def _net(fusion: str, **options) -> SequenceNet:
    torch.manual_seed(0)
    net = plain_net(
        sum(STREAMS), 4, hidden_size=8, bidirectional=True, pooling="mean", frontend="conv",
        conv_channels=8, streams=STREAMS, fusion=fusion, kernel_features=840, max_length=30,
        **options,
    )  # fmt: skip
    net.fit_kernel_features(torch.randn(6, 30, sum(STREAMS)), torch.full((6,), 30))
    return net.eval()


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_fused_logits_are_the_same_alone_or_padded(fusion: str) -> None:
    net = _net(fusion)
    x, lengths = torch.randn(3, 30, sum(STREAMS)), torch.tensor([30, 17, 9])
    x[1, 17:], x[2, 9:] = 7.0, -3.0  # padding of any value
    batch = net(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(batch[b], net(x[b : b + 1, :n], lengths[b : b + 1])[0])


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_every_stream_moves_the_logits(fusion: str) -> None:
    net = _net(fusion)
    x, lengths = torch.randn(2, 30, sum(STREAMS)), torch.tensor([30, 30])
    base = net(x, lengths)
    for start, width in ((0, STREAMS[0]), (STREAMS[0], STREAMS[1])):
        changed = x.clone()
        changed[..., start : start + width] += torch.randn(2, 30, width)
        assert not torch.allclose(net(changed, lengths), base)


def test_kernels_read_one_stream_each_and_share_the_features_out() -> None:
    kernels = DilatedKernelFeatures(sum(STREAMS), 1680, 100, streams=STREAMS)
    sums = kernels.channel_sums  # dilations x D x 84
    video, sensor = sums[:, : STREAMS[0]].sum(1) > 0, sums[:, STREAMS[0] :].sum(1) > 0
    assert not (video & sensor).any() and (video | sensor).all()
    share = (kernels.feature_stream == 1).float().mean().item()
    assert 0.45 < share < 0.55  # three channels get half the features, beside forty


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_a_missing_stream_is_its_training_mean_for_every_part_of_the_net(fusion: str) -> None:
    net = _net(fusion)
    x, lengths = torch.randn(2, 30, sum(STREAMS)), torch.tensor([30, 21])
    missing = torch.tensor([[False, True], [True, False]])
    filled = x.clone()  # what classify gives for a missing stream: the training mean
    filled[0, :, STREAMS[0] :] = net.channel_mean[STREAMS[0] :]
    filled[1, :, : STREAMS[0]] = net.channel_mean[: STREAMS[0]]
    expected = net(filled, lengths)
    torch.testing.assert_close(net(x, lengths, missing=missing), expected)
    # memoized kernel features of the whole sample, with the lost stream's replaced
    memo = net.kernel_features(x, lengths)
    torch.testing.assert_close(net(x, lengths, kernel_features=memo, missing=missing), expected)


def test_stream_dropout_drops_one_stream_of_about_its_share_of_samples() -> None:
    net = _net("late", stream_dropout=0.5)
    missing = net._drawn_missing(4000, torch.device("cpu"))
    assert (missing.sum(1) <= 1).all()  # never both
    assert 0.45 < missing.any(1).float().mean().item() < 0.55
    assert 0.45 < missing[:, 0].float().sum().item() / missing.sum().item() < 0.55
    x, lengths = torch.randn(8, 30, sum(STREAMS)), torch.full((8,), 30)
    net.train()
    assert not torch.equal(net(x, lengths), net(x, lengths))  # drawn anew each step
    net.eval()
    assert torch.equal(net(x, lengths), net(x, lengths))


def test_streams_must_add_up_to_the_input() -> None:
    with pytest.raises(ValueError, match="add up"):
        plain_net(10, 2, streams=[4, 5])


def test_a_late_fusion_net_sends_encode_to_its_branches() -> None:
    net = _net("late")
    x, lengths = torch.randn(2, 12, sum(STREAMS)), torch.tensor([12, 7])
    with pytest.raises(ValueError, match="net.encoder.branches"):
        net.encode(x, lengths)
    first = net.encoder.branches[0].encode(net.normalize(x)[..., : STREAMS[0]], lengths)[0]
    assert first.shape[:2] == (2, 12)
