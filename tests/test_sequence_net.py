import itertools

import pytest
import torch
from torch import nn

from pipeline.models.sequence_net import PeepholeLSTM, SequenceNet, reverse_padded

CONFIGS = list(
    itertools.product(
        ["lstm", "gru", "peephole"], ["last", "mean", "max", "attention"], [False, True]
    )
)


def test_reverse_padded_reverses_each_sample_within_its_length() -> None:
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_padded(x, torch.tensor([4, 2])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


@pytest.mark.parametrize(("cell", "pooling", "bidirectional"), CONFIGS)
def test_padding_never_changes_a_samples_logits(cell, pooling, bidirectional) -> None:
    torch.manual_seed(0)
    net = SequenceNet(3, 4, cell=cell, hidden_size=8, num_layers=2, pooling=pooling,
                      bidirectional=bidirectional).eval()  # fmt: skip
    short, long = torch.randn(1, 5, 3), torch.randn(1, 11, 3)
    alone = net(short, torch.tensor([5]))
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 6), value=7.0), long])
    together = net(batch, torch.tensor([5, 11]))
    torch.testing.assert_close(together[0:1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1:2], net(long, torch.tensor([11])), atol=1e-5, rtol=1e-5)


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
    net = SequenceNet(3, 2, hidden_size=6, init="matlab")
    lstm = net.layers[0][0]
    forget = lstm.bias_ih_l0[6:12]
    assert torch.equal(forget, torch.ones(6))
    assert lstm.bias_ih_l0[:6].abs().sum() == 0
    for block in lstm.weight_hh_l0.detach().chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)


def test_attention_weights_ignore_padding() -> None:
    net = SequenceNet(2, 3, hidden_size=4, pooling="attention")
    h = net.encode(torch.randn(2, 6, 2), torch.tensor([6, 3]))
    _, weights = net.pool(h, torch.tensor([6, 3]))
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
