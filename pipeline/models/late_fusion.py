"""Late fusion: an encoder per stream, their pooled features side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from pipeline.models.encoder import SequenceEncoder

if TYPE_CHECKING:
    from pipeline.models.config import NetConfig


class LateFusion(nn.Module):
    """Normalized `[B, T, sum(streams)]` steps -> `[B, features]`: each stream's channels
    through a `SequenceEncoder` of its own (the same options), pooled, then concatenated.

    Args:
        streams: channels of each stream, side by side in the input.
        config: the options every stream's encoder is built with.
    """

    def __init__(self, streams: list[int], config: NetConfig) -> None:
        super().__init__()
        self.streams = list(streams)
        self.branches = nn.ModuleList(SequenceEncoder(width, config) for width in streams)
        self.stride = config.stride or 1
        self.features = sum(branch.features for branch in self.branches)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Refused: there is no one sequence of features; each branch encodes its stream."""
        raise ValueError(
            "a late-fusion net encodes each stream apart: call encode on net.encoder.branches[i] "
            "with that stream's channels (the head joins their pooled features: embed)"
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The streams' pooled features side by side `[B, features]`; no attention weights
        (each stream has its own)."""
        parts = x.split(self.streams, dim=-1)
        pooled = [
            branch(part, lengths)[0] for branch, part in zip(self.branches, parts, strict=True)
        ]
        return torch.cat(pooled, dim=-1), None
