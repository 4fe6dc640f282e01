"""The sequence classifier network: normalization, an encoder, a linear head, kernel head.

`SequenceNet` puts together what `NetConfig` asks for: per-channel normalization of the raw
input, one `SequenceEncoder` (one stream, or several fused early) or a `LateFusion` of one per
stream, dropout and a linear head, and a `KernelHead` whose logits are joined with the head's
(`heads`: added, or averaged as an ensemble's; with `recurrent` false, the kernel head alone).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.encoder import SequenceEncoder
from pipeline.models.kernel_head import KernelHead
from pipeline.models.late_fusion import LateFusion

if TYPE_CHECKING:
    from pipeline.models.config import NetConfig

# state-dict keys of checkpoints from before the encoder, late fusion and kernel head were
# modules of their own -> where they are now (a late-fusion branch's identity normalization,
# which it no longer has, goes to None)
_RENAMED = [
    (re.compile(r"branches\.(\d+)\.channel_(mean|std)$"), None),
    (re.compile(r"(branches|stem|fcn|projections|channel_attention|layers|attention)\."),
     r"encoder.\1."),
    (re.compile(r"kernels\."), "kernel_head.kernels."),
    (re.compile(r"kernel_head\.(weight|bias)$"), r"kernel_head.linear.\1"),
]  # fmt: skip


class SequenceNet(nn.Module):
    """Raw right-padded `[B, T, D]` sequences -> logits `[B, num_classes]`.

    The normalization buffers `channel_mean` and `channel_std` start as the identity; training
    sets them from the train split, so the network takes raw features.

    Args:
        input_size: channels per time step (D).
        num_classes: number of output classes.
        config: the options (`NetConfig`: cell, sizes, pooling, front end, kernel features,
            fusion, ...). Stream dropout sets a sample's lost stream to its training mean (zero
            once normalized), as a missing stream is given at inference.
        max_length: the longest training sequence; sets the kernel features' largest dilation.
        streams: channels of each input stream side by side in `x` (video features, then a
            sensor's, ...), summing to `input_size`; several streams are fused by `fusion`, and
            the kernel features share themselves out among the streams.
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        config: NetConfig,
        *,
        max_length: int = 1,
        streams: list[int] | None = None,
    ) -> None:
        super().__init__()
        c = config
        if c.kernel_features and c.pooling == "none":
            raise ValueError("a label per step needs kernel_features 0: they describe a sequence")
        if c.fusion not in ("early", "late", "none"):
            raise ValueError(f"unknown fusion {c.fusion!r}; choose early, late or none")
        if c.heads not in ("sum", "ensemble"):
            raise ValueError(f"unknown heads {c.heads!r}; choose sum or ensemble")
        self.heads = c.heads
        streams = list(streams or [input_size])
        if sum(streams) != input_size:
            raise ValueError(f"streams {streams} do not add up to {input_size} channels")
        self.streams, self.stream_dropout = streams, c.stream_dropout
        self.register_buffer("channel_mean", torch.zeros(input_size))
        self.register_buffer("channel_std", torch.ones(input_size))
        stream_of_channel = torch.arange(len(streams)).repeat_interleave(torch.tensor(streams))
        self.register_buffer("channel_stream", stream_of_channel, persistent=False)
        if not c.recurrent and not (c.kernel_features and c.pooling != "none"):
            raise ValueError("recurrent false needs kernel_features: they classify alone")
        self.encoder = self.head = None  # recurrent false: the kernel head alone
        if c.recurrent and len(streams) > 1 and c.fusion == "late":
            self.encoder = LateFusion(streams, c)
        elif c.recurrent:
            fused = streams if len(streams) > 1 else None
            self.encoder = SequenceEncoder(input_size, c, streams=fused)
        self.stride = 1 if self.encoder is None else self.encoder.stride
        self.dropout = nn.Dropout(c.dropout)
        if self.encoder is not None:
            self.head = nn.Linear(self.encoder.features, num_classes)
        self.kernel_head = None
        if c.kernel_features:
            self.kernel_head = KernelHead(
                input_size, c.kernel_features, max_length, num_classes, streams=streams,
                pooling=tuple(c.kernel_pooling), difference=c.kernel_difference,
                hydra=c.kernel_hydra,
            )  # fmt: skip

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        _rename_old_keys(state_dict, prefix)  # before the submodules load theirs
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def normalize(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Raw `x` in units of the train split's per-channel statistics; the streams that
        `missing [B, streams]` marks are set to zero, their training mean."""
        x = (x - self.channel_mean) / self.channel_std
        if missing is None:
            return x
        lost = missing.to(x.device)[:, self.channel_stream]  # B x D
        return x.masked_fill(lost.unsqueeze(1), 0.0)

    def encode(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent features `[B, T', H * directions]` of raw `x` and their lengths `[B]`
        (`T'` is `T` shortened by the stride); padded steps are meaningless. A late-fusion
        net has no one sequence of features: each of `encoder.branches` encodes its stream."""
        return self._encoder().encode(self.normalize(x, missing), lengths)

    def embed(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's input for raw `x`: pooled features `[B, F]` (pooling ``none``: `[B, T, F]`),
        and attention weights `[B, T']` over the recurrent steps with attention pooling (not
        with late fusion, where each stream has its own)."""
        return self._encoder()(self.normalize(x, missing), lengths)

    def _encoder(self) -> SequenceEncoder | LateFusion:
        if self.encoder is None:
            raise ValueError("this net has no recurrent encoder (recurrent false): the kernel "
                             "features' head classifies alone")  # fmt: skip
        return self.encoder

    def _drawn_missing(self, batch: int, device: torch.device) -> torch.Tensor:
        """Stream dropout: `[B, streams]`, one stream chosen at random for a `stream_dropout`
        share of the samples."""
        dropped = torch.rand(batch, device=device) < self.stream_dropout
        which = torch.randint(len(self.streams), (batch,), device=device)
        return F.one_hot(which, len(self.streams)).bool() & dropped[:, None]

    def kernel_features(
        self, x: torch.Tensor, lengths: torch.Tensor, missing: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The fixed kernel features `[B, F]` of raw `x`; `[B, 0]` when the net has none."""
        if self.kernel_head is None:
            return x.new_zeros(len(x), 0)
        return self.kernel_head.features(self.normalize(x, missing), lengths)

    def fit_kernel_features(
        self, x: torch.Tensor, lengths: torch.Tensor, done: Callable[[int], object] | None = None
    ) -> torch.Tensor | None:
        """Fit the kernel features' biases and scaling to raw training samples `x [N, T, D]`
        (`done`: as for `KernelHead.fit`); their pooled outputs, None without kernel features."""
        if self.kernel_head is None:
            return None
        return self.kernel_head.fit(self.normalize(x), lengths, done)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        *,
        kernel_features: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits `[B, num_classes]` for right-padded raw `x [B, T, D]` with true `lengths [B]`:
        `head_logits` joined by `joined`. With pooling ``none``: `[B, T, num_classes]`."""
        return self.joined(
            self.head_logits(x, lengths, kernel_features=kernel_features, missing=missing)
        )

    def head_logits(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        *,
        kernel_features: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Each head's logits for raw `x`: the recurrent network's, then the kernel head's (of
        the heads the net has). With pooling ``none``: `[B, T, num_classes]`, one per step.

        `kernel_features` passes the output of `kernel_features(x, lengths)` computed earlier.
        `missing` `[B, streams]` leaves streams out; in training, stream dropout draws it.
        """
        if missing is None and self.training and self.stream_dropout and len(self.streams) > 1:
            missing = self._drawn_missing(len(x), x.device)
        logits = []
        if self.encoder is not None:
            logits.append(self.head(self.dropout(self.embed(x, lengths, missing)[0])))
        if self.kernel_head is not None:
            if kernel_features is None:
                kernel_features = self.kernel_features(x, lengths, missing)
            elif missing is not None:
                kernel_features = self.kernel_head.without_streams(
                    kernel_features, missing, lengths
                )
            logits.append(self.kernel_head(kernel_features))
        return logits

    def joined(self, head_logits: list[torch.Tensor]) -> torch.Tensor:
        """The net's logits from each head's (`head_logits`' output), as `heads` says: their
        sum, or with ``ensemble`` the mean of the heads' log-probabilities."""
        if len(head_logits) == 1:
            return head_logits[0]
        recurrent, kernel = head_logits
        if self.heads == "sum":
            return recurrent + kernel.to(recurrent.dtype)
        return (recurrent.float().log_softmax(-1) + kernel.float().log_softmax(-1)) / 2


def _rename_old_keys(state_dict: dict, prefix: str) -> None:
    """Load a state dict of the earlier layout (keys such as `stem.`, `branches.0.`,
    `kernels.`) into this one: each old key is renamed in place."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        local = key[len(prefix) :]
        for pattern, replacement in _RENAMED:
            if local.startswith(("encoder.", "kernel_head.kernels.", "kernel_head.linear.")):
                break
            if pattern.match(local):
                value = state_dict.pop(key)
                if replacement is not None:
                    state_dict[prefix + pattern.sub(replacement, local, count=1)] = value
                break
