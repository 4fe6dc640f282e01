"""Fixed dilated-kernel features beside the recurrent layers (MiniRocket, Dempster et al. 2021).

84 kernels of length 9 with weights in {-1, 2} (three 2s) run at exponentially spaced
dilations over random sums of the input channels. Each output is compared with biases taken
from quantiles of the same output on training samples; a feature is the proportion of real
steps where the output exceeds its bias (PPV). Nothing here is learnt by gradient descent:
`fit` sets the biases (and the features' scaling) once from training data, and the head learns what to make of them.
With several streams side by side in the channels (video and sensor features), each kernel
sums channels of one stream only, and the streams take turns, so every stream gets its share
of the features however few channels it has.
Half the kernels count every step (zero padding at the ends), half only the steps whose window
lies wholly inside the sequence, as MiniRocket does; padding beyond a sample's length is never
counted, so a sample gets the same features alone or padded in a batch.
Everything here runs in float32 with autocast off: the features are comparisons with fixed
biases, and a model must see the same ones in bf16-mixed training as in float32 inference.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.frontends import padding_mask

KERNEL_LENGTH = 9
_TWOS = torch.tensor(list(itertools.combinations(range(KERNEL_LENGTH), 3)))  # 84 x 3
NUM_KERNELS = len(_TWOS)
MAX_DILATIONS = 32


def kernel_weights() -> torch.Tensor:
    """The 84 kernels `[84, 1, 9]`: -1 everywhere, 2 at three of the nine taps."""
    weights = -torch.ones(NUM_KERNELS, KERNEL_LENGTH)
    weights.scatter_(1, _TWOS, 2.0)
    return weights.unsqueeze(1)


def dilations(max_length: int, num_features: int) -> tuple[list[int], list[int]]:
    """Dilations spaced exponentially up to a window of `max_length`, and how many features
    (biases) each kernel gets at each; the counts sum to `num_features // 84`."""
    per_kernel = max(1, num_features // NUM_KERNELS)
    top = math.log2(max(1, (max_length - 1) / (KERNEL_LENGTH - 1)))
    points = torch.logspace(0, top, min(per_kernel, MAX_DILATIONS), base=2).floor().long()
    values, counts = torch.unique(points, return_counts=True)
    counts = counts * (per_kernel // min(per_kernel, MAX_DILATIONS))
    counts[: per_kernel - int(counts.sum())] += 1
    return values.tolist(), counts.tolist()


def _quantiles(n: int) -> torch.Tensor:
    """A low-discrepancy sequence in (0, 1): multiples of the golden ratio, modulo 1."""
    return (torch.arange(1, n + 1, dtype=torch.float64) * (math.sqrt(5) + 1) / 2 % 1).float()


def in_float32(method: Callable) -> Callable:
    """Run `method(self, x, lengths, ...)` with autocast off and `x` in float32."""

    @functools.wraps(method)
    def wrapper(self, x: torch.Tensor, *args, **kwargs):
        with torch.autocast(x.device.type, enabled=False):
            return method(self, x.float(), *args, **kwargs)

    return wrapper


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x [B, T, D]` with zeros past each sample's length: what it would be padded with alone."""
    return x * padding_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)


class DilatedKernelFeatures(nn.Module):
    """`[B, T, D]` normalized input and lengths -> `[B, num_features]` PPV features.

    Args:
        input_size: channels D; each kernel and dilation sums a random subset of them.
        num_features: about how many features (rounded down to a multiple of 84).
        max_length: the longest training sequence, which sets the largest dilation.
        seed: draws the channel subsets and, in `fit`, the samples the biases come from.
        streams: channels of each stream, in order (summing to D); a kernel's channels all
            come from one stream, kernel k at dilation i from stream (k + i) mod streams.
    """

    def __init__(
        self,
        input_size: int,
        num_features: int,
        max_length: int,
        seed: int = 0,
        streams: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.dilations, self.counts = dilations(max_length, num_features)
        self.num_features = NUM_KERNELS * sum(self.counts)
        self.seed = seed
        streams = streams or [input_size]
        if sum(streams) != input_size:
            raise ValueError(f"streams {streams} do not add up to {input_size} channels")
        generator = torch.Generator().manual_seed(seed)
        owner = (torch.arange(NUM_KERNELS) + torch.arange(len(self.dilations))[:, None]) % len(
            streams
        )  # dilations x 84: the stream each kernel reads
        sums = torch.zeros(len(self.dilations), input_size, NUM_KERNELS)
        start = 0
        for index, width in enumerate(streams):
            own = (owner == index).unsqueeze(1)
            sums[:, start : start + width] = self._channel_sums(width, generator) * own
            start += width
        counts = torch.tensor(self.counts)[:, None].expand(-1, NUM_KERNELS)
        self.register_buffer("weight", kernel_weights())
        self.register_buffer("channel_sums", sums)
        # the stream of every feature, in the order of `forward`'s output
        self.register_buffer(
            "feature_stream", owner.repeat_interleave(counts.flatten()), persistent=False
        )
        self.register_buffer("bias", torch.zeros(self.num_features))
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_std", torch.ones(self.num_features))

    def _channel_sums(self, input_size: int, generator: torch.Generator) -> torch.Tensor:
        """`[dilations, D, 84]` 0/1: which channels each kernel sums at each dilation."""
        shape = (len(self.dilations), NUM_KERNELS)
        if input_size == 1:
            return torch.ones(len(self.dilations), 1, NUM_KERNELS)
        top = math.log2(min(input_size, KERNEL_LENGTH) + 1)
        sizes = (2 ** (torch.rand(shape, generator=generator) * top)).long().clamp(1, input_size)
        ranks = torch.rand(*shape, input_size, generator=generator).argsort(-1).argsort(-1)
        return (ranks < sizes[..., None]).float().transpose(1, 2)

    def without_streams(self, features: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """`features [B, F]` as they are when the streams marked in `missing [B, streams]` are
        all zeros (their mean, once normalized): a zero input never exceeds a positive bias."""
        absent = ((self.bias < 0).to(features.dtype) - self.feature_mean) / self.feature_std
        lost = missing[:, self.feature_stream]  # B x F
        return torch.where(lost, absent.to(features.dtype), features)

    def _outputs(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Kernel outputs `[B, 84, T]` of `x [B, T, D]` at dilation `index`, zero-padded."""
        return self._convolve(
            torch.einsum("btd,dk->bkt", x, self.channel_sums[index].to(x.dtype)), index
        )

    def _convolve(self, summed: torch.Tensor, index: int) -> torch.Tensor:
        """Each kernel over its own row of channel sums `[B, 84, T]` at dilation `index`."""
        dilation = self.dilations[index]
        return F.conv1d(summed, self.weight.to(summed.dtype), padding=4 * dilation,
                        dilation=dilation, groups=NUM_KERNELS)  # fmt: skip

    def _masks(self, lengths: torch.Tensor, steps: int, index: int) -> torch.Tensor:
        """`[B, 84, T]` steps counted: all real steps for even kernels (odd at odd dilations),
        only those whose window lies inside the sequence for the others (all if none does)."""
        edge = 4 * self.dilations[index]
        t = torch.arange(steps, device=lengths.device)
        lengths = lengths[:, None, None]
        real = t < lengths
        inside = (t >= edge) & (t < lengths - edge) | real & (lengths <= 2 * edge)
        padded = torch.arange(NUM_KERNELS, device=lengths.device)[:, None] % 2 == index % 2
        return torch.where(padded, real, inside)

    def _counted_steps(self, lengths: torch.Tensor, index: int) -> torch.Tensor:
        """`[B, 84]` how many steps `_masks` counts for each kernel at dilation `index`."""
        edge = 4 * self.dilations[index]
        inside = torch.where(lengths > 2 * edge, lengths - 2 * edge, lengths)[:, None]
        padded = torch.arange(NUM_KERNELS, device=lengths.device) % 2 == index % 2
        return torch.where(padded, lengths[:, None], inside)

    @torch.no_grad()
    @in_float32
    def fit(self, x: torch.Tensor, lengths: torch.Tensor, batch_size: int = 16) -> None:
        """Set the biases from training samples `x [N, T, D]` (normalized), then the features'
        mean and standard deviation over them, so that `forward` returns standardized features."""
        self._fit_biases(x, lengths)
        self.feature_mean.zero_()
        self.feature_std.fill_(1.0)
        features = torch.cat([
            self(x[i : i + batch_size], lengths[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        ])  # fmt: skip
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).nan_to_num(0.0).clamp_min(1e-3))

    @in_float32
    def _fit_biases(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Each kernel at each dilation takes quantiles of its output on one random sample."""
        x = _zero_padding(x, lengths.to(x.device))
        generator = torch.Generator().manual_seed(self.seed)
        biases = []
        quantiles = (
            _quantiles(self.num_features).to(x.device).split([NUM_KERNELS * c for c in self.counts])
        )
        for index, count in enumerate(self.counts):
            picks = torch.randint(len(x), (NUM_KERNELS,), generator=generator).to(x.device)
            # row k: kernel k's channel sum of sample picks[k], then kernel k over it
            summed = torch.einsum("ktd,dk->kt", x[picks], self.channel_sums[index].to(x.dtype))
            rows = self._convolve(summed[None], index)[0]  # 84 x T
            q = quantiles[index].view(NUM_KERNELS, count)
            for k in range(NUM_KERNELS):
                real = rows[k, : int(lengths[picks[k]])].float()
                biases.append(torch.quantile(real, q[k]))
        self.bias.copy_(torch.cat(biases))

    @in_float32
    def positive_counts(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """How many counted steps of each kernel output exceed each bias: `[B, num_features]`
        integers (int64) for normalized right-padded `x [B, T, D]`; `standardize` makes them
        the features. Fixed once fitted, so training can keep them (`KernelCountMemo`)."""
        lengths = lengths.to(x.device)
        x = _zero_padding(x, lengths)
        counts = []
        for index, (count, bias) in enumerate(
            zip(self.counts, self.bias.split([NUM_KERNELS * c for c in self.counts]), strict=True)
        ):
            outputs = self._outputs(x, index)  # B x 84 x T
            mask = self._masks(lengths, x.shape[1], index)
            bias = bias.view(NUM_KERNELS, count, 1)
            counted = torch.stack(
                [((outputs > bias[:, j]) & mask).sum(-1) for j in range(count)], dim=2
            )  # B x 84 x count, one bias at a time: long inputs stay within memory
            counts.append(counted.flatten(1))
        return torch.cat(counts, dim=1)

    def standardize(self, counts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` from `counts` (any integer dtype):
        each count over the steps its kernel counts (PPV), less the features' training mean,
        over their standard deviation."""
        lengths = lengths.to(counts.device)
        steps = torch.cat([
            self._counted_steps(lengths, index).repeat_interleave(count, dim=1)
            for index, count in enumerate(self.counts)
        ], dim=1)  # fmt: skip
        return (counts.long() / steps - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` of normalized right-padded
        `x [B, T, D]`, the same under autocast as without."""
        return self.standardize(self.positive_counts(x, lengths), lengths)


class KernelHead(nn.Module):
    """Fixed dilated-kernel features and the linear layer that reads them: logits
    `[B, num_classes]` to add to the recurrent network's.

    The layer starts at zero, so the head starts in the span of the training features (as
    ridge regression does). `kernels` is fitted once (`fit`) and never trained.

    Args:
        input_size, num_features, max_length, streams: as for `DilatedKernelFeatures`.
        num_classes: the logits' width.
    """

    def __init__(
        self,
        input_size: int,
        num_features: int,
        max_length: int,
        num_classes: int,
        *,
        streams: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.kernels = DilatedKernelFeatures(input_size, num_features, max_length, streams=streams)
        self.linear = nn.Linear(self.kernels.num_features, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of standardized kernel features `[B, num_features]` (`kernels`' output)."""
        return self.linear(features.to(self.linear.weight.dtype))
