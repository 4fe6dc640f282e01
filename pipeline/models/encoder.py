"""Recurrent sequence encoder: LSTM / GRU / peephole LSTM, stacked, optionally bidirectional.

Batches are right-padded. Every sample's outputs are exactly what it would get alone:
the forward direction never sees the padding before a sample's last step, and the backward
direction runs over each sample reversed *within its own length*, so it starts on real data.
Pooling masks the padding. This is as exact as packed sequences and much faster to train.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from pipeline.core.choices import choose
from pipeline.models.frontends import (
    FRONT_ENDS,
    make_channel_attention,
    masked_mean,
    padding_mask,
    pool_windows,
)

if TYPE_CHECKING:
    from pipeline.models.config import NetConfig


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each `x[b, :lengths[b]]` along time; padding steps stay where they are. x: [B, T, ...]"""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # 1 x T
    src = lengths.to(x.device)[:, None] - 1 - steps  # B x T
    src = torch.where(src >= 0, src, steps.expand_as(src))
    return x.gather(1, src.view(*src.shape, *([1] * (x.dim() - 2))).expand_as(x))


class PeepholeLSTM(nn.Module):
    """Single-layer LSTM whose gates also see the cell state (Gers & Schmidhuber, 2000).

    Runs a Python loop over time steps, so it is several times slower than `nn.LSTM`.
    Same call convention as `nn.LSTM(batch_first=True)`; returns `(output [B, T, H], None)`.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.zeros(4 * hidden_size))
        self.peephole = nn.Parameter(torch.zeros(3, hidden_size))  # input, forget, output gates
        bound = 1.0 / math.sqrt(hidden_size)
        for w in (self.weight_ih_l0, self.weight_hh_l0):
            nn.init.uniform_(w, -bound, bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        x_gates = x @ self.weight_ih_l0.T + self.bias_ih_l0  # B x T x 4H
        outputs = []
        for t in range(steps):
            i, f, g, o = (x_gates[:, t] + h @ self.weight_hh_l0.T).chunk(4, dim=1)
            i = torch.sigmoid(i + self.peephole[0] * c)
            f = torch.sigmoid(f + self.peephole[1] * c)
            c = f * c + i * torch.tanh(g)
            o = torch.sigmoid(o + self.peephole[2] * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), None


def _init_matlab(rnn: nn.Module, cell: Cell) -> None:
    """MATLAB's defaults: Glorot input weights, orthogonal recurrent weights, unit forget bias."""
    gates = 3 if cell == "gru" else 4
    for name, p in rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)
        elif name.startswith("weight_hh"):
            for block in p.data.chunk(gates, dim=0):
                nn.init.orthogonal_(block)
        elif name.startswith("bias"):
            nn.init.zeros_(p)
            if cell != "gru" and name.startswith("bias_ih"):
                hidden = p.shape[0] // 4
                p.data[hidden : 2 * hidden] = 1.0  # gate order i, f, g, o


# name -> builder (input size, hidden size) -> a batch-first recurrent layer of one direction
CELLS: dict[str, Callable[[int, int], nn.Module]] = {
    "lstm": functools.partial(nn.LSTM, batch_first=True),
    "gru": functools.partial(nn.GRU, batch_first=True),
    "peephole": PeepholeLSTM,
}
Cell = Literal[tuple(CELLS)]
INITS: dict[str, Callable[[nn.Module, str], None] | None] = {
    "pytorch": None,
    "matlab": _init_matlab,
}
Init = Literal[tuple(INITS)]


def _run_recurrent(rnn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`rnn(x)`'s outputs; under CPU autocast in float32, as oneDNN has no bfloat16 LSTM on
    CPUs without AVX-512 (the convolutions and the head still run in bfloat16)."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        warnings.warn(
            "mixed precision on the CPU: the recurrent layers run in float32", stacklevel=3
        )
        with torch.autocast("cpu", enabled=False):
            return rnn(x.float())[0]
    return rnn(x)[0]


class SequenceEncoder(nn.Module):
    """Normalized `[B, T, D]` steps -> pooled features `[B, features]`: an optional
    convolutional front end and channel attention, the recurrent stack, pooling over time.

    Args:
        input_size: channels per time step (D).
        config: the options (`NetConfig`); its `stride` (None: 1) is the input steps per
            recurrent step: max-pooling after the first block (``conv``), or the mean of each
            `stride` input steps (``fcn``, ``none``).
        streams: with early fusion, the channels of each stream side by side in `x`; each is
            projected to `config.stream_width` channels before the front end.
    """

    def __init__(
        self, input_size: int, config: NetConfig, *, streams: list[int] | None = None
    ) -> None:
        super().__init__()
        c = config
        self.pooling, self.stride = c.pooling, c.stride or 1
        choose(POOLINGS, c.pooling, "pooling")
        if self.stride > 1 and c.pooling == "none":
            raise ValueError("a label per step needs stride 1: strides drop the steps' labels")
        self.streams = streams
        self.projections = None
        if streams is not None:
            self.projections = nn.ModuleList(nn.Linear(width, c.stream_width) for width in streams)
            input_size = c.stream_width * len(streams)
        front_end = choose(FRONT_ENDS, c.frontend, "frontend")
        self.stem, self.fcn, recurrent_in = front_end(input_size, c.conv_channels, self.stride)
        self.channel_attention = make_channel_attention(c.channel_attention, recurrent_in)
        self.layers = _recurrent_stack(recurrent_in, c)
        self.dropout = nn.Dropout(c.dropout)
        recurrent_out = c.hidden_size * (2 if c.bidirectional else 1)
        self.attention = nn.Linear(recurrent_out, 1) if c.pooling == "attention" else None
        self.features = recurrent_out + (c.conv_channels if self.fcn else 0)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent features `[B, T', H * directions]` of normalized `x` and their lengths
        `[B]` (`T'` is `T` shortened by the stride); padded steps are meaningless."""
        x = self._projected(x)
        if self.stem is not None:
            x, lengths = self.stem(x, lengths)
        else:
            x, lengths = pool_windows(x, lengths, self.stride, reduce="mean")
        if self.channel_attention is not None:
            x = self.channel_attention(x, lengths)
        for index, directions in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)
            outputs = [_run_recurrent(directions[0], x)]  # B x T x H
            if len(directions) == 2:
                backward = _run_recurrent(directions[1], reverse_padded(x, lengths))
                outputs.append(reverse_padded(backward, lengths))
            x = torch.cat(outputs, dim=-1)
        return x, lengths

    def _projected(self, x: torch.Tensor) -> torch.Tensor:
        """Early fusion: each stream of `x` through its own projection, side by side."""
        if self.projections is None:
            return x
        parts = x.split(self.streams, dim=-1)
        return torch.cat([p(part) for p, part in zip(self.projections, parts, strict=True)], -1)

    def pool(
        self, h: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`[B, T, F]` -> `[B, F]`, plus attention weights `[B, T]` for attention pooling."""
        return POOLINGS[self.pooling](self, h, lengths.to(h.device))

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pooled features `[B, features]` of normalized `x` (pooling ``none``: `[B, T, F]`),
        and attention weights `[B, T']` over the recurrent steps with attention pooling."""
        h, h_lengths = self.encode(x, lengths)
        conv = None
        if self.fcn is not None:
            conv = self.fcn(self._projected(x), lengths)[0]  # B x T x C
        if self.pooling == "none":
            return (h if conv is None else torch.cat([h, conv], dim=-1)), None
        pooled, attention = self.pool(h, h_lengths)
        if conv is not None:
            pooled = torch.cat([pooled, masked_mean(conv, lengths)], dim=-1)
        return pooled, attention


def _recurrent_stack(input_size: int, config: NetConfig) -> nn.ModuleList:
    """`num_layers` layers, each a list of one recurrent module per direction, initialized."""
    make_rnn = choose(CELLS, config.cell, "cell")
    initialize = choose(INITS, config.init, "init")
    directions = 2 if config.bidirectional else 1
    layers = nn.ModuleList()
    for layer in range(config.num_layers):
        layer_in = input_size if layer == 0 else config.hidden_size * directions
        layers.append(
            nn.ModuleList(make_rnn(layer_in, config.hidden_size) for _ in range(directions))
        )
    if initialize is not None:
        for rnn in (rnn for layer in layers for rnn in layer):
            initialize(rnn, config.cell)
    return layers


def _last(
    net: SequenceEncoder, h: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, None]:
    """The forward direction's final step and the backward direction's (it sits at step 0)."""
    hidden = h.shape[-1] // len(net.layers[0])
    last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden)
    pooled = h[..., :hidden].gather(1, last).squeeze(1)
    if len(net.layers[0]) == 2:
        pooled = torch.cat([pooled, h[:, 0, hidden:]], dim=-1)
    return pooled, None


def _mean(
    net: SequenceEncoder, h: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, None]:
    return masked_mean(h, lengths), None


def _max(net: SequenceEncoder, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
    mask = padding_mask(lengths, h.shape[1])
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1), None


def _attention(
    net: SequenceEncoder, h: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    mask = padding_mask(lengths, h.shape[1])
    scores = net.attention(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # B x T
    weights = scores.softmax(dim=1)
    return (weights.unsqueeze(-1) * h).sum(1), weights


# name -> pooling over time (net, h [B, T, F], lengths) -> ([B, F], attention weights or None);
# ``none`` keeps every step (a label per step)
POOLINGS: dict[str, Callable | None] = {
    "last": _last,
    "mean": _mean,
    "max": _max,
    "attention": _attention,
    "none": None,
}
Pooling = Literal[tuple(POOLINGS)]
