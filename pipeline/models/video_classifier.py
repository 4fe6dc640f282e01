"""Frames -> pretrained CNN -> recurrent classifier, assembled into one exportable module."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.sequence_net import SequenceNet


class VideoClassifier(nn.Module):
    """Classifies preprocessed frame sequences directly.

    Args:
        encoder: frame encoder, `[N, 3, S, S]` -> `[N, D]` (a `Backbone.model`).
        head: the trained `SequenceNet` over `[B, T, D]` features (it holds the normalization).
        frame_size: S, the side of the square frames the encoder takes.
    """

    def __init__(self, encoder: nn.Module, head: SequenceNet, frame_size: int = 224) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.frame_size = frame_size

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits `[B, K]` for right-padded frames `[B, T, 3, H, W]` with true `lengths [B]`."""
        batch, steps = frames.shape[:2]
        features = self.encoder(frames.flatten(0, 1)).view(batch, steps, -1)
        return self.head(features.float(), lengths)
