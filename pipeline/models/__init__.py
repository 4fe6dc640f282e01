"""Sequence networks (plain `nn.Module`s)."""

from pipeline.models.sequence_net import PeepholeLSTM, SequenceNet, reverse_padded

__all__ = ["PeepholeLSTM", "SequenceNet", "reverse_padded"]
