"""The sequence network's options, each written once: here.

`NetConfig` is what `SequenceNet` is built from, and LightningCLI offers its fields as
`--model.<option>` (the LightningModule passes its keyword arguments on to it). A field's
``before`` metadata is the value that checkpoints written before the option existed were
trained with (`legacy_options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from pipeline.core.errors import UserError, check_ranges
from pipeline.models.encoder import Cell, Init, Pooling
from pipeline.models.frontends import ChannelAttention, Frontend
from pipeline.models.kernel_features import KernelPooling


def _since(default, before):
    """An option added after the first checkpoints: `default` now, `before` for those."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"before": before})
    return field(default=default, metadata={"before": before})


@dataclass(kw_only=True)
class NetConfig:
    """The network: front end, recurrent layers, pooling, kernel features, fusion of streams.

    Args:
        cell: ``lstm``, ``gru`` or ``peephole`` (LSTM whose gates see the cell state; slower).
        hidden_size: units per direction and layer.
        num_layers: stacked recurrent layers.
        bidirectional: run each layer in both directions.
        dropout: dropout between layers and before the head.
        pooling: ``last``, ``mean``, ``max`` or ``attention``; ``none`` (a label per step) is
            set by itself when the data is labelled per step (``data.per_step``).
        init: ``pytorch`` or ``matlab`` weight initialization (orthogonal recurrent weights,
            unit forget bias).
        frontend: ``conv`` (convolution blocks before the recurrent layers), ``fcn`` (LSTM-FCN:
            a fully convolutional branch beside them) or ``none`` (the raw steps).
        conv_channels: channels of the convolution blocks (``fcn``: C, 2C, C).
        stride: input steps per recurrent step; None picks the smallest that keeps the
            longest training sequence within `max_recurrent_steps` (1 when labelling steps).
        channel_attention: ``none``, ``se`` (squeeze-and-excitation) or ``feca`` (from each
            channel's FFT magnitude spectrum), on the recurrent layers' input.
        max_recurrent_steps: longest recurrent run that stride None allows.
        kernel_features: about how many fixed dilated-kernel features (MiniRocket's, fitted to
            the training data at the start of `fit`) feed a linear head beside the recurrent
            network; 0 for none. Sequence labels only (0 when labelling steps).
        fusion: with several streams in the features (`seqclass extract` of video and sensor
            recordings; a video's CNN and motion features), ``late``: an encoder per stream,
            joined before the head; ``early``: each stream projected to `stream_width`
            channels, then one encoder; ``none``: all channels as one stream.
        stream_dropout: with several streams, the chance in training that a sample loses one
            stream; a model trained with it also classifies samples that lack a stream.
        stream_width: channels each stream is projected to (``early``).
        kernel_pooling: how each kernel output is pooled against each bias, some of ``ppv``
            (the share of steps above the bias, MiniRocket's), ``mpv``, ``mipv`` and ``lspv``
            (MultiRocket's mean of positive values, mean index of positive values, longest
            stretch of positive values); `kernel_features` is shared out among them.
        kernel_difference: also run the kernels over each series' first difference (half the
            features each, as MultiRocket does).
        kernel_hydra: add Hydra's competing-kernel counts to the kernel features (2,048 per
            dilation, dilations 1, 2, 4, ... up to the longest training sequence).
        recurrent: False leaves out the encoder and its head: the kernel features' head alone
            classifies (a fixed-feature model, as MiniRocket; needs `kernel_features`).
        heads: how the recurrent network's head and the kernel features' head are joined:
            ``sum`` adds their logits and trains the sum; ``ensemble`` trains each head on a
            loss of its own and averages their log-probabilities.
    """

    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    pooling: Pooling = "mean"
    init: Init = "pytorch"
    frontend: Frontend = _since("conv", "none")
    conv_channels: int = _since(128, 128)
    stride: int | None = _since(None, 1)
    channel_attention: ChannelAttention = _since("none", "none")
    max_recurrent_steps: int | None = _since(64, None)
    kernel_features: int = _since(10_000, 0)
    fusion: Literal["early", "late", "none"] = _since("late", "none")
    stream_dropout: float = 0.25
    stream_width: int = 32
    recurrent: bool = _since(True, True)
    kernel_pooling: list[KernelPooling] = _since(["ppv"], ["ppv"])
    kernel_difference: bool = _since(False, False)
    kernel_hydra: bool = _since(True, False)
    heads: Literal["sum", "ensemble"] = _since("sum", "sum")

    def __post_init__(self) -> None:
        check_ranges("model", vars(self), {
            "hidden_size": ">= 1", "num_layers": ">= 1", "conv_channels": ">= 1", "stride": ">= 1",
            "max_recurrent_steps": ">= 1", "kernel_features": ">= 0", "stream_width": ">= 1",
            "dropout": "[0, 1)", "stream_dropout": "[0, 1)",
        })  # fmt: skip
        if not self.recurrent and not self.kernel_features:
            raise UserError(
                "--model.recurrent false leaves the kernel features' head to classify alone: "
                "give --model.kernel_features (10000 by default), or keep the recurrent network."
            )


def legacy_options() -> dict:
    """The options checkpoints from before each option existed were trained with."""
    return {f.name: f.metadata["before"] for f in fields(NetConfig) if "before" in f.metadata}


def net_config(options: dict) -> NetConfig:
    """The `NetConfig` of the network options among `options` (a checkpoint's hyperparameters)."""
    return NetConfig(**{f.name: options[f.name] for f in fields(NetConfig) if f.name in options})
