"""Frames (and their motion descriptors) -> pretrained CNN -> sequence network, assembled into
one exportable module."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.sequence_net import SequenceNet


class VideoClassifier(nn.Module):
    """Classifies preprocessed frame sequences directly.

    Args:
        encoder: frame encoder, `[N, 3, S, S]` -> `[N, D]` (a `Backbone.model`).
        head: the trained `SequenceNet` over `[B, T, D (+ M)]` features (it holds the
            normalization).
        frame_size: S, the side of the square frames the encoder takes.
        motion_dim: M, the width of the motion descriptors the head takes after the CNN's
            features (0: none). They are computed outside the module, from the decoded frames
            (`feature_extractors.video.MotionStream`), as OpenCV's optical flow is no torch op.
    """

    def __init__(
        self, encoder: nn.Module, head: SequenceNet, frame_size: int = 224, motion_dim: int = 0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.frame_size = frame_size
        self.motion_dim = motion_dim

    def forward(
        self, frames: torch.Tensor, lengths: torch.Tensor, motion: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits `[B, K]` for right-padded frames `[B, T, 3, H, W]` with true `lengths [B]`,
        and, for a model with motion descriptors, their descriptors `motion [B, T, M]`."""
        batch, steps = frames.shape[:2]
        features = self.encoder(frames.flatten(0, 1)).view(batch, steps, -1).float()
        if self.motion_dim:
            if motion is None:
                raise ValueError(f"this model takes motion descriptors [B, T, {self.motion_dim}]")
            features = torch.cat([features, motion.float()], dim=-1)
        return self.head(features, lengths)
