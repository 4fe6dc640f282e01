"""Sequence networks (plain `nn.Module`s)."""

from pipeline.models.encoder import PeepholeLSTM, SequenceEncoder, reverse_padded
from pipeline.models.kernel_features import DilatedKernelFeatures, KernelHead
from pipeline.models.late_fusion import LateFusion
from pipeline.models.sequence_net import SequenceNet

__all__ = [
    "DilatedKernelFeatures",
    "KernelHead",
    "LateFusion",
    "PeepholeLSTM",
    "SequenceEncoder",
    "SequenceNet",
    "reverse_padded",
]
