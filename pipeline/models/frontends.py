"""Convolutional front ends and channel attention that run before (or beside) the recurrent layers.

Each maps right-padded `x [B, T, D]` with true `lengths [B]` to `(h [B, T', C], lengths' [B])`.
Padded steps are zeroed before every convolution, so a sample's outputs are exactly those it gets
alone (in eval mode; in training, BatchNorm's batch statistics include the zeroed padding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import nn

from pipeline.core.choices import choose


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """`[B, T]` bool, True on real time steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps of `h [B, T, C]`: `[B, C]`."""
    mask = padding_mask(lengths.to(h.device), h.shape[1]).unsqueeze(-1).to(h.dtype)
    return (h * mask).sum(1) / mask.sum(1).clamp(min=1)


def pool_windows(
    x: torch.Tensor, lengths: torch.Tensor, factor: int, *, reduce: Literal["mean", "max"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean or max of each `factor` steps of `x [B, T, D]`: `[B, ceil(T / factor), D]`, lengths
    rounded up. A sample's last window counts its missing steps as zeros, so the result is the
    same alone or padded in a batch (for ``max``, exact on non-negative `x`)."""
    if factor == 1:
        return x, lengths
    batch, steps, channels = x.shape
    windows = -(-steps // factor)
    x = x * padding_mask(lengths.to(x.device), steps).unsqueeze(-1).to(x.dtype)
    x = nn.functional.pad(x, (0, 0, 0, windows * factor - steps))
    x = x.view(batch, windows, factor, channels)
    pooled = x.amax(2) if reduce == "max" else x.sum(2) / factor
    return pooled, -(-lengths // factor)


class ConvBlocks(nn.Module):
    """Conv1d + BatchNorm + ReLU blocks over time ('same' padding). With `stride` > 1, the first
    block's output is max-pooled over windows of `stride` steps, so the later blocks (and what
    follows) run on sequences `stride` times shorter, having still seen every input step.

    Args:
        input_size: channels in (D).
        channels: output channels of each block, e.g. ``(128, 256, 128)``.
        kernel_sizes: kernel of each block (odd).
        stride: pooling after the first block; lengths shrink by it (rounded up).
    """

    def __init__(
        self,
        input_size: int,
        channels: tuple[int, ...],
        kernel_sizes: tuple[int, ...],
        stride: int = 1,
    ) -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes):
            raise ValueError("give one kernel size per block")
        if stride < 1:
            raise ValueError(f"stride must be at least 1, not {stride}")
        self.stride = stride
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for c_in, c_out, k in zip(
            (input_size, *channels[:-1]), channels, kernel_sizes, strict=True
        ):
            self.convs.append(nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False))
            self.norms.append(nn.BatchNorm1d(c_out))
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths.to(x.device)
        h = x.transpose(1, 2)  # B x D x T: time last throughout, as the layers want it
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = h * padding_mask(lengths, h.shape[2]).unsqueeze(1).to(h.dtype)
            # contiguous: a convolution of few channels comes out channels-last, and batch
            # norm over that layout is 3 times slower on CPUs
            h = torch.relu(norm(conv(h).contiguous()))
            if index == 0 and self.stride > 1:
                # as `pool_windows`: past a sample's end, zeros (never above a ReLU's output)
                h = h * padding_mask(lengths, h.shape[2]).unsqueeze(1).to(h.dtype)
                h = nn.functional.max_pool1d(h, self.stride, ceil_mode=True)
                lengths = -(-lengths // self.stride)
        return h.transpose(1, 2), lengths  # B x T' x C


class SqueezeExcitation(nn.Module):
    """Channel weights from each channel's mean over time (Hu et al., 2018): `h * w[B, 1, C]`."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.excite = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def describe(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One number per channel: `[B, C]`."""
        return masked_mean(h, lengths)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return h * self.excite(self.describe(h, lengths)).unsqueeze(1)


class FrequencyChannelAttention(SqueezeExcitation):
    """FECA: channel weights from each channel's magnitude spectrum instead of its mean.

    The spectrum is Welch-like: the real steps are cut into frames of `n_fft`, the magnitudes
    of their real FFTs are averaged over the frames that hold real steps, and a learnt
    weighting of the log-magnitudes (shared by the channels) makes each channel's descriptor.
    Then the excitation is that of squeeze-and-excitation.
    """

    def __init__(self, channels: int, reduction: int = 4, n_fft: int = 32) -> None:
        super().__init__(channels, reduction)
        self.n_fft = n_fft
        self.bands = nn.Linear(n_fft // 2 + 1, 1)

    def describe(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps, channels = h.shape
        lengths = lengths.to(h.device)
        frames = -(-steps // self.n_fft)
        h = h * padding_mask(lengths, steps).unsqueeze(-1).to(h.dtype)
        h = nn.functional.pad(h, (0, 0, 0, frames * self.n_fft - steps))
        h = h.view(batch, frames, self.n_fft, channels).transpose(2, 3)  # B x F x C x n_fft
        magnitude = torch.fft.rfft(h.float(), dim=-1).abs()  # B x F x C x bins
        used = padding_mask(-(-lengths // self.n_fft), frames).to(magnitude.dtype)  # B x F
        spectrum = (magnitude * used[:, :, None, None]).sum(1) / used.sum(1)[:, None, None]
        return self.bands(torch.log1p(spectrum).to(self.bands.weight.dtype)).squeeze(-1)


def make_channel_attention(kind: ChannelAttention, channels: int) -> nn.Module | None:
    """The channel attention module of `kind` over `channels`, or None for ``none``."""
    build = choose(CHANNEL_ATTENTION, kind, "channel_attention")
    return None if build is None else build(channels)


# name -> the module over `channels` (None: no channel attention)
CHANNEL_ATTENTION: dict[str, Callable[[int], nn.Module] | None] = {
    "none": None,
    "se": SqueezeExcitation,
    "feca": FrequencyChannelAttention,
}
ChannelAttention = Literal[tuple(CHANNEL_ATTENTION)]


def _no_front_end(input_size: int, channels: int, stride: int) -> FrontEnd:
    if stride != 1:
        raise ValueError("stride needs a front end (conv or fcn)")
    return FrontEnd(None, None, input_size)


def _conv(input_size: int, channels: int, stride: int) -> FrontEnd:
    return FrontEnd(ConvBlocks(input_size, (channels,) * 3, (7, 5, 3), stride), None, channels)


def _fcn(input_size: int, channels: int, stride: int) -> FrontEnd:
    branch = ConvBlocks(input_size, (channels, 2 * channels, channels), (7, 5, 3))
    return FrontEnd(None, branch, input_size)


class FrontEnd(NamedTuple):
    """What a front end adds: blocks before the recurrent layers (`stem`), or beside them
    (`branch`, LSTM-FCN), and the channels the recurrent layers then take."""

    stem: ConvBlocks | None
    branch: ConvBlocks | None
    recurrent_in: int


# name -> builder (input channels, block channels C, stride) -> FrontEnd
FRONT_ENDS: dict[str, Callable[[int, int, int], FrontEnd]] = {
    "none": _no_front_end,
    "conv": _conv,
    "fcn": _fcn,
}
Frontend = Literal[tuple(FRONT_ENDS)]
