"""Recurrent sequence classifier: LSTM / GRU / peephole LSTM, stacked, optionally bidirectional.

Batches are right-padded. Every sample's logits are exactly what it would get alone:
the forward direction never sees the padding before a sample's last step, and the backward
direction runs over each sample reversed *within its own length*, so it starts on real data.
Pooling masks the padding. This is as exact as packed sequences and much faster to train.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.core.choices import choose
from pipeline.models.frontends import (
    FRONT_ENDS,
    make_channel_attention,
    masked_mean,
    padding_mask,
    pool_windows,
)
from pipeline.models.kernel_features import DilatedKernelFeatures

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


class SequenceNet(nn.Module):
    """Per-channel input normalization, an optional convolutional front end and channel
    attention, a recurrent encoder, pooling over time and a linear head.

    The normalization buffers `channel_mean` and `channel_std` start as the identity; training
    sets them from the train split, so the network takes raw features.

    Args:
        input_size: channels per time step (D).
        num_classes: number of output classes.
        config: the options (`NetConfig`: cell, sizes, pooling, front end, kernel features,
            fusion, ...). Its `stride` is the input steps per recurrent step here (None: 1):
            max-pooling after the first block (``conv``), or the mean of each `stride` input
            steps (``fcn``). Stream dropout sets a sample's lost stream to its training mean
            (zero once normalized), as a missing stream is given at inference.
        max_length: the longest training sequence; sets the kernel features' largest dilation.
        streams: channels of each input stream side by side in `x` (video features, then a
            sensor's, ...), summing to `input_size`; several streams are fused by `fusion`, and
            the kernel features share themselves out among the streams.
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int | None,
        config: NetConfig,
        *,
        max_length: int = 1,
        streams: list[int] | None = None,
    ) -> None:
        super().__init__()
        c = config
        stride = c.stride or 1
        choose(POOLINGS, c.pooling, "pooling")
        front_end = choose(FRONT_ENDS, c.frontend, "frontend")
        make_rnn, initialize = choose(CELLS, c.cell, "cell"), choose(INITS, c.init, "init")
        if stride > 1 and c.pooling == "none":
            raise ValueError("a label per step needs stride 1: strides drop the steps' labels")
        if c.kernel_features and c.pooling == "none":
            raise ValueError("a label per step needs kernel_features 0: they describe a sequence")
        if c.fusion not in ("early", "late", "none"):
            raise ValueError(f"unknown fusion {c.fusion!r}; choose early, late or none")
        streams = list(streams or [input_size])
        if sum(streams) != input_size:
            raise ValueError(f"streams {streams} do not add up to {input_size} channels")
        if not 0.0 <= c.stream_dropout < 1.0:
            raise ValueError(f"stream_dropout must be in [0, 1), got {c.stream_dropout}")
        directions = 2 if c.bidirectional else 1
        self.pooling = c.pooling
        self.stride = stride
        self.streams, self.stream_dropout = streams, c.stream_dropout
        self.stem = self.fcn = self.projections = self.branches = None
        self.register_buffer("channel_mean", torch.zeros(input_size))
        self.register_buffer("channel_std", torch.ones(input_size))
        stream_of_channel = torch.arange(len(streams)).repeat_interleave(torch.tensor(streams))
        self.register_buffer("channel_stream", stream_of_channel, persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        self.head = self.kernels = self.kernel_head = None
        kernels = (input_size, c.kernel_features, max_length, num_classes)
        if len(streams) > 1 and c.fusion == "late":
            # an encoder per stream: the same options, no kernel features (the parent's see all)
            branch = replace(c, kernel_features=0)
            self.branches = nn.ModuleList(SequenceNet(width, None, branch) for width in streams)
            self.layers = nn.ModuleList()
            self.features = sum(branch.features for branch in self.branches)
            self.head = nn.Linear(self.features, num_classes)
            self._add_kernel_features(*kernels)
            return
        if len(streams) > 1:
            self.projections = nn.ModuleList(nn.Linear(width, c.stream_width) for width in streams)
            input_size = c.stream_width * len(streams)
        self.stem, self.fcn, recurrent_in = front_end(input_size, c.conv_channels, stride)
        self.channel_attention = make_channel_attention(c.channel_attention, recurrent_in)
        self.layers = nn.ModuleList()
        for layer in range(c.num_layers):
            layer_in = recurrent_in if layer == 0 else c.hidden_size * directions
            self.layers.append(
                nn.ModuleList(make_rnn(layer_in, c.hidden_size) for _ in range(directions))
            )
        if initialize is not None:
            for directions_ in self.layers:
                for rnn in directions_:
                    initialize(rnn, c.cell)
        features = c.hidden_size * directions
        self.attention = nn.Linear(features, 1) if c.pooling == "attention" else None
        self.features = features + (c.conv_channels if self.fcn else 0)  # the head's input
        if num_classes is not None:  # a late-fusion branch has none: its parent's head joins
            self.head = nn.Linear(self.features, num_classes)
        self._add_kernel_features(*kernels)

    def _add_kernel_features(
        self, input_size: int, count: int, max_length: int, num_classes: int | None
    ) -> None:
        """`count` fixed kernel features over the streams, and their zero-initialized head."""
        if not count:
            return
        self.kernels = DilatedKernelFeatures(input_size, count, max_length, streams=self.streams)
        # zero weights: the head starts in the span of the training features (as ridge does)
        self.kernel_head = nn.Linear(self.kernels.num_features, num_classes)
        nn.init.zeros_(self.kernel_head.weight)
        nn.init.zeros_(self.kernel_head.bias)

    def encode(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent features `[B, T', H * directions]` of raw `x` and their lengths `[B]`
        (`T'` is `T` shortened by the stride); padded steps are meaningless. `missing`
        `[B, streams]` marks streams to leave out (see `normalize`). A late-fusion net has
        no one sequence of features: each of its `branches` encodes its own stream."""
        if self.branches is not None:
            raise ValueError(
                "a late-fusion net encodes each stream apart: call encode on net.branches[i] "
                "with that stream's channels (the head joins their pooled features: embed)"
            )
        x = self._projected(self.normalize(x, missing))
        if self.stem is not None:
            x, lengths = self.stem(x, lengths)
        else:
            x, lengths = pool_windows(x, lengths, self.stride, "mean")
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

    def normalize(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Raw `x` in units of the train split's per-channel statistics; the streams that
        `missing [B, streams]` marks are set to zero, their training mean."""
        x = (x - self.channel_mean) / self.channel_std
        if missing is None:
            return x
        lost = missing.to(x.device)[:, self.channel_stream]  # B x D
        return x.masked_fill(lost.unsqueeze(1), 0.0)

    def _projected(self, x: torch.Tensor) -> torch.Tensor:
        """Early fusion: each stream of normalized `x` through its own projection, side by side."""
        if self.projections is None:
            return x
        parts = x.split(self.streams, dim=-1)
        return torch.cat([p(part) for p, part in zip(self.projections, parts, strict=True)], -1)

    def _drawn_missing(self, batch: int, device: torch.device) -> torch.Tensor:
        """Stream dropout: `[B, streams]`, one stream chosen at random for a `stream_dropout`
        share of the samples."""
        dropped = torch.rand(batch, device=device) < self.stream_dropout
        which = torch.randint(len(self.streams), (batch,), device=device)
        return F.one_hot(which, len(self.streams)).bool() & dropped[:, None]

    def pool(
        self, h: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`[B, T, F]` -> `[B, F]`, plus attention weights `[B, T]` for attention pooling."""
        return POOLINGS[self.pooling](self, h, lengths.to(h.device))

    def embed(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's input for raw `x`: pooled features `[B, F]` (pooling ``none``: `[B, T, F]`),
        and attention weights `[B, T']` over the recurrent steps with attention pooling (not
        with late fusion, where each stream has its own)."""
        if self.branches is not None:
            parts = self.normalize(x, missing).split(self.streams, dim=-1)
            pooled = [
                b.embed(part, lengths)[0] for b, part in zip(self.branches, parts, strict=True)
            ]
            return torch.cat(pooled, dim=-1), None
        h, h_lengths = self.encode(x, lengths, missing)
        conv = None
        if self.fcn is not None:
            conv = self.fcn(self._projected(self.normalize(x, missing)), lengths)[0]  # B x T x C
        if self.pooling == "none":
            return (h if conv is None else torch.cat([h, conv], dim=-1)), None
        pooled, attention = self.pool(h, h_lengths)
        if conv is not None:
            pooled = torch.cat([pooled, masked_mean(conv, lengths)], dim=-1)
        return pooled, attention

    def kernel_features(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The fixed kernel features `[B, F]` of raw `x`; `[B, 0]` when the net has none."""
        if self.kernels is None:
            return x.new_zeros(len(x), 0)
        return self.kernels(self.normalize(x, missing), lengths)

    def fit_kernel_features(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Fit the kernel features' biases and scaling to raw training samples `x [N, T, D]`."""
        if self.kernels is not None:
            self.kernels.fit(self.normalize(x), lengths)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        kernel_features: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits `[B, num_classes]` for right-padded raw `x [B, T, D]` with true `lengths [B]`.

        With pooling ``none``: logits `[B, T, num_classes]`, one per step. `kernel_features`
        passes the output of `kernel_features(x, lengths)` computed earlier. `missing`
        `[B, streams]` leaves streams out; in training, stream dropout draws it.
        """
        if missing is None and self.training and self.stream_dropout and len(self.streams) > 1:
            missing = self._drawn_missing(len(x), x.device)
        logits = self.head(self.dropout(self.embed(x, lengths, missing)[0]))
        if self.kernel_head is None:
            return logits
        if kernel_features is None:
            kernel_features = self.kernel_features(x, lengths, missing)
        elif missing is not None:
            kernel_features = self.kernels.without_streams(kernel_features, missing)
        return logits + self.kernel_head(kernel_features.to(logits.dtype))


def _last(net: SequenceNet, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
    """The forward direction's final step and the backward direction's (it sits at step 0)."""
    hidden = h.shape[-1] // len(net.layers[0])
    last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden)
    pooled = h[..., :hidden].gather(1, last).squeeze(1)
    if len(net.layers[0]) == 2:
        pooled = torch.cat([pooled, h[:, 0, hidden:]], dim=-1)
    return pooled, None


def _mean(net: SequenceNet, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
    return masked_mean(h, lengths), None


def _max(net: SequenceNet, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
    mask = padding_mask(lengths, h.shape[1])
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1), None


def _attention(
    net: SequenceNet, h: torch.Tensor, lengths: torch.Tensor
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
