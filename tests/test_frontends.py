import warnings

import pytest
import torch

from pipeline.models.frontends import (
    ConvBlocks,
    FrequencyChannelAttention,
    SqueezeExcitation,
    pool_windows,
)
from pipeline.models.sequence_net import SequenceNet

from conftest import plain_net


def _net(frontend, stride, attention="none", cell="lstm", pooling="mean", **kw) -> SequenceNet:
    torch.manual_seed(0)
    net = plain_net(3, 4, cell=cell, hidden_size=8, bidirectional=True, pooling=pooling,
                      frontend=frontend, conv_channels=8, stride=stride,
                      channel_attention=attention, **kw)  # fmt: skip
    for module in net.modules():  # BatchNorm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("frontend", ["conv", "fcn", "none"])
def test_per_step_logits_ignore_padding_and_keep_every_step(frontend) -> None:
    net = _net(frontend, 1, "feca", pooling="none")
    short, long = torch.randn(1, 9, 3), torch.randn(1, 20, 3)
    together = net(torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 11)), long]),
                   torch.tensor([9, 20]))  # fmt: skip
    assert together.shape == (2, 20, 4)
    torch.testing.assert_close(together[0:1, :9], net(short, torch.tensor([9])), atol=1e-5, rtol=0)


def test_stride_shortens_the_recurrent_run_and_its_lengths() -> None:
    stem = ConvBlocks(3, (8, 8), (7, 5), stride=4).eval()
    h, lengths = stem(torch.randn(2, 50, 3), torch.tensor([50, 13]))
    assert h.shape == (2, 13, 8)
    assert lengths.tolist() == [13, 4]  # ceil(50 / 4), ceil(13 / 4)


def test_window_pooling_takes_the_mean_or_max_of_each_window() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]).unsqueeze(-1)
    mean, lengths = pool_windows(x, torch.tensor([5]), 2, reduce="mean")
    assert mean.squeeze().tolist() == [1.5, 3.5, 2.5] and lengths.tolist() == [3]
    assert pool_windows(x, torch.tensor([5]), 2, reduce="max")[0].squeeze().tolist() == [2, 4, 5]


@pytest.mark.parametrize("frontend", ["conv", "fcn"])
def test_sequences_shorter_than_the_kernel_or_stride_still_classify(frontend) -> None:
    net = _net(frontend, 16)
    logits = net(torch.randn(3, 5, 3), torch.tensor([1, 2, 5]))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()


def test_frequency_attention_tells_channels_apart_by_spectrum_not_mean() -> None:
    """Two signals with the same mean and power but different frequencies: SE sees the same
    descriptor for both, FECA does not."""
    t = torch.arange(64.0)
    slow, fast = torch.sin(2 * torch.pi * t / 32), torch.sin(2 * torch.pi * t / 4)
    h = torch.stack([slow, fast])[:, :, None]  # 2 samples x 64 steps x 1 channel
    lengths = torch.tensor([64, 64])
    se, feca = SqueezeExcitation(1), FrequencyChannelAttention(1)
    se_descriptor = se.describe(h, lengths)
    torch.testing.assert_close(se_descriptor[0], se_descriptor[1], atol=1e-6, rtol=0)
    spectrum = feca.describe(h, lengths)
    assert (spectrum[0] - spectrum[1]).abs() > 1e-3


@pytest.mark.parametrize(("frontend", "stride"), [("conv", 3), ("fcn", 2)])
def test_traced_model_gives_the_same_logits_at_other_lengths(frontend, stride) -> None:
    """`seqclass export` traces the model on one length; strides must not freeze it."""
    net = _net(frontend, stride, "feca")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (torch.randn(1, 16, 3), torch.tensor([16])))
    x, lengths = torch.randn(2, 41, 3), torch.tensor([41, 29])
    torch.testing.assert_close(traced(x, lengths), net(x, lengths), atol=1e-5, rtol=1e-5)


def test_a_label_per_step_refuses_a_stride() -> None:
    with pytest.raises(ValueError, match="stride 1"):
        plain_net(3, 2, pooling="none", frontend="conv", stride=2)
