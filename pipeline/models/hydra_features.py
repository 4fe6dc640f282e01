"""Hydra's competing dilated kernels (Dempster et al. 2023) as fixed features beside the
recurrent layers.

At each dilation, groups of `kernels_per_group` random kernels (length 9, zero mean, unit L1
norm) run over a random sum of channels: half the groups over the series, half over its first
difference. At every step the kernels of a group compete: the one with the largest output adds
that output to its count, the one with the smallest adds one. A sample's counts are taken over
its own steps only (zero padding at both ends), so it gets the same ones alone or padded in a
batch. `standardize` takes the square root of their positive part, as Hydra's sparse scaler
does, and scales it by the training mean and standard deviation. Like the dilated-kernel
features, everything runs in float32 with autocast off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.frontends import padding_mask
from pipeline.models.kernel_features import (
    difference_lengths,
    first_difference,
    fit_scaling,
    in_chunks,
    in_float32,
)

KERNEL_LENGTH = 9


def _first_extreme(outputs: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest (or smallest) of `outputs [B, G, K, T]` over the kernels (dim 2), and the
    first kernel that holds it, as `max(2)` (`min(2)`) gives them. On a CPU, where those take
    their indices slowly across strided rows, from `amax` (`amin`) and one comparison: the
    kernels are ranked K, K - 1, ..., 1, and the largest rank among the equal ones is the first."""
    if outputs.device.type != "cpu":
        return outputs.max(2) if largest else outputs.min(2)
    extreme = outputs.amax(2) if largest else outputs.amin(2)
    kernels = outputs.shape[2]
    rank = torch.arange(kernels, 0, -1, dtype=torch.int16 if kernels > 255 else torch.uint8)
    held = (outputs == extreme.unsqueeze(2)).to(rank.dtype).mul_(rank[:, None])
    return extreme, kernels - held.amax(2).long()


class HydraFeatures(nn.Module):
    """`[B, T, D]` normalized input and lengths -> `[B, num_features]` competing-kernel counts.

    Args:
        input_size: channels D; each group sums a few of them (with repeats, as Hydra draws).
        max_length: the longest training sequence: dilations 1, 2, 4, ... up to its window.
        groups: groups of kernels per dilation (half over the series, half its difference).
        kernels_per_group: the kernels that compete within a group.
        seed: draws the kernels and the channels.
        streams: channels of each stream, in order (summing to D); a group's channels all
            come from one stream, group g at dilation i from stream (g + i) mod streams.
    """

    def __init__(
        self,
        input_size: int,
        max_length: int,
        *,
        groups: int = 64,
        kernels_per_group: int = 8,
        seed: int = 0,
        streams: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.kernels_per_group, self.groups = kernels_per_group, groups // 2  # per input
        top = math.log2(max(1, max_length - 1) / (KERNEL_LENGTH - 1))
        self.dilations = [2**i for i in range(max(0, int(top)) + 1)]
        generator = torch.Generator().manual_seed(seed)
        shape = (len(self.dilations), 2, kernels_per_group * self.groups, 1, KERNEL_LENGTH)
        weight = torch.randn(shape, generator=generator)
        weight = weight - weight.mean(-1, keepdim=True)
        self.register_buffer("weight", weight / weight.abs().sum(-1, keepdim=True))
        streams = streams or [input_size]
        owner = (
            torch.arange(self.groups) + torch.arange(len(self.dilations))[:, None, None]
        ) % len(streams)  # dilations x 1 x groups: the stream each group reads
        self.register_buffer(
            "channel_sums", self._channel_sums(streams, owner.expand(-1, 2, -1), generator)
        )
        # the stream of every feature, in the order of `pooled`'s output
        per_input = owner.expand(-1, 2, -1).repeat_interleave(kernels_per_group, dim=2)
        self.register_buffer(
            "feature_stream", per_input.repeat_interleave(2, dim=1).flatten(), persistent=False
        )
        self.num_features = len(self.dilations) * 2 * 2 * self.groups * kernels_per_group
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_std", torch.ones(self.num_features))

    def _channel_sums(
        self, streams: list[int], owner: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """`[dilations, 2, D, groups]`: how many times each group sums each channel, drawn as
        Hydra draws (half the stream's channels, 2 to 8, with repeats; one channel once)."""
        sums = torch.zeros(*owner.shape[:2], sum(streams), self.groups)
        starts = [sum(streams[:i]) for i in range(len(streams))]
        for index in torch.cartesian_prod(*(torch.arange(n) for n in owner.shape)).tolist():
            dilation, part, group = index
            stream = int(owner[dilation, part, group])
            width, start = streams[stream], starts[stream]
            picks = 1 if width == 1 else min(max(width // 2, 2), 8)
            channels = start + torch.randint(width, (picks,), generator=generator)
            sums[dilation, part, :, group] += torch.bincount(channels, minlength=sum(streams))
        return sums

    @torch.no_grad()
    @in_float32
    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The counts `[B, num_features]` (float32) of normalized right-padded `x [B, T, D]`:
        per dilation, over the series then its first difference, the kernels' summed winning
        outputs, then how often each was the smallest."""
        return in_chunks(
            self._pooled, x, lengths.to(x.device), self.groups * self.kernels_per_group
        )

    def _pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = [(x * padding_mask(lengths, x.shape[1]).unsqueeze(-1), lengths)]
        inputs.append(first_difference(x, lengths))
        counts = []
        for index, dilation in enumerate(self.dilations):
            for part, (series, steps) in enumerate(inputs):
                summed = torch.einsum("btd,dg->bgt", series, self.channel_sums[index, part])
                outputs = F.conv1d(summed, self.weight[index, part], padding=4 * dilation,
                                   dilation=dilation, groups=self.groups)  # fmt: skip
                outputs = outputs.unflatten(1, (self.groups, self.kernels_per_group))
                real = padding_mask(steps, x.shape[1]).unsqueeze(1).float()  # B x 1 x T
                top, top_kernel = _first_extreme(outputs, largest=True)
                low_kernel = _first_extreme(outputs, largest=False)[1]
                shape = outputs.shape[:3]
                won = x.new_zeros(shape).scatter_add_(-1, top_kernel, top * real)
                lost = x.new_zeros(shape).scatter_add_(-1, low_kernel, real.expand_as(top))
                counts += [won.flatten(1), lost.flatten(1)]
        return torch.cat(counts, dim=1)

    def fit(
        self, x: torch.Tensor, lengths: torch.Tensor, done: Callable[[int], object] | None = None
    ) -> torch.Tensor:
        """Set the features' scaling from normalized training samples `x [N, T, D]`
        (`fit_scaling`, which calls `done`); their pooled outputs `[N, num_features]`."""
        return fit_scaling(self, x, lengths, done)

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` from `pooled`'s output."""
        return (pooled.float().clamp_min(0).sqrt() - self.feature_mean) / self.feature_std

    def without_streams(
        self, features: torch.Tensor, missing: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`features [B, F]` as they are when the streams marked in `missing [B, streams]` are
        all zeros. Zero inputs give every kernel an output of zero: none adds to its count,
        and the first kernel of each group is the smallest at every counted step (`min` gives
        ties to the first). Worked out from the lengths alone, with no pass and no wait for
        the device."""
        lengths = lengths.to(features.device)
        shape = (len(features), self.groups, self.kernels_per_group)
        counts = []
        for steps in (lengths, difference_lengths(lengths)):
            lost = features.new_zeros(shape, dtype=torch.float32)
            lost[:, :, 0] = steps[:, None].float()
            counts += [torch.zeros_like(lost).flatten(1), lost.flatten(1)]  # won, lost
        absent = self.standardize(torch.cat(counts * len(self.dilations), dim=1))
        lost = missing.to(features.device)[:, self.feature_stream]
        return torch.where(lost, absent.to(features.dtype), features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` of normalized right-padded `x`."""
        return self.standardize(self.pooled(x, lengths))
