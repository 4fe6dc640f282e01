"""Sequence networks (plain `nn.Module`s)."""

from pipeline.models.encoder import PeepholeLSTM, SequenceEncoder, reverse_padded
from pipeline.models.hydra_features import HydraFeatures
from pipeline.models.kernel_features import DilatedKernelFeatures
from pipeline.models.kernel_head import KernelHead
from pipeline.models.late_fusion import LateFusion
from pipeline.models.sequence_net import SequenceNet

__all__ = [
    "DilatedKernelFeatures",
    "HydraFeatures",
    "KernelHead",
    "LateFusion",
    "PeepholeLSTM",
    "SequenceEncoder",
    "SequenceNet",
    "reverse_padded",
]
