import itertools

import pytest
import torch
from torch import nn

from pipeline.models.encoder import PeepholeLSTM, reverse_padded

from conftest import plain_net

CONFIGS = [
    *((cell, pooling, bidirectional, "none", 1, "none", 0) for cell, pooling, bidirectional in
      itertools.product(["lstm", "gru", "peephole"], ["last", "mean", "max", "attention"],
                        [False, True])),
    *((cell, pooling, True, frontend, stride, attention, 0) for cell, pooling, (frontend, stride),
      attention in itertools.product(["lstm", "gru"], ["last", "mean", "attention"],
                                     [("conv", 1), ("conv", 3), ("fcn", 1), ("fcn", 4)],
                                     ["none", "se", "feca"])),
    *(("lstm", pooling, True, frontend, stride, "none", 500) for pooling, (frontend, stride) in
      itertools.product(["last", "mean"], [("none", 1), ("conv", 3), ("fcn", 4)])),
]  # fmt: skip


def test_reverse_padded_reverses_each_sample_within_its_length() -> None:
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_padded(x, torch.tensor([4, 2])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


@pytest.mark.parametrize(
    ("cell", "pooling", "bidirectional", "frontend", "stride", "attention", "kernels"), CONFIGS
)
def test_padding_never_changes_a_samples_logits(
    cell, pooling, bidirectional, frontend, stride, attention, kernels
) -> None:
    """Also with every front end, stride, channel attention and kernel features (BatchNorm in
    eval mode, with running statistics that are not the identity; a kernel head that is not
    zero)."""
    torch.manual_seed(0)
    net = plain_net(3, 4, cell=cell, hidden_size=8, num_layers=2, pooling=pooling,
                      bidirectional=bidirectional, frontend=frontend, conv_channels=8,
                      stride=stride, channel_attention=attention, kernel_features=kernels,
                      max_length=70)  # fmt: skip
    if kernels:
        net.channel_mean.fill_(0.5)
        net.fit_kernel_features(torch.randn(8, 70, 3), torch.full((8,), 70))
        nn.init.normal_(net.kernel_head.linear.weight)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    net.eval()
    short, long = torch.randn(1, 37, 3), torch.randn(1, 70, 3)
    alone = net(short, torch.tensor([37]))
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 33), value=7.0), long])
    together = net(batch, torch.tensor([37, 70]))
    torch.testing.assert_close(together[0:1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1:2], net(long, torch.tensor([70])), atol=1e-5, rtol=1e-5)


def test_peephole_lstm_with_zero_peepholes_equals_torch_lstm() -> None:
    torch.manual_seed(0)
    lstm, peephole = nn.LSTM(3, 6, batch_first=True), PeepholeLSTM(3, 6)
    with torch.no_grad():
        peephole.weight_ih_l0.copy_(lstm.weight_ih_l0)
        peephole.weight_hh_l0.copy_(lstm.weight_hh_l0)
        peephole.bias_ih_l0.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(peephole(x)[0], lstm(x)[0])
    with torch.no_grad():
        peephole.peephole.fill_(0.5)
    assert not torch.allclose(peephole(x)[0], lstm(x)[0])


def test_matlab_init_sets_unit_forget_bias_and_orthogonal_recurrent_weights() -> None:
    net = plain_net(3, 2, hidden_size=6, init="matlab")
    lstm = net.encoder.layers[0][0]
    forget = lstm.bias_ih_l0[6:12]
    assert torch.equal(forget, torch.ones(6))
    assert lstm.bias_ih_l0[:6].abs().sum() == 0
    for block in lstm.weight_hh_l0.detach().chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)


def test_attention_weights_ignore_padding() -> None:
    net = plain_net(2, 3, hidden_size=4, pooling="attention")
    _, weights = net.embed(torch.randn(2, 6, 2), torch.tensor([6, 3]))
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
