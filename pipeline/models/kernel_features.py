"""Fixed dilated-kernel features beside the recurrent layers (MiniRocket, Dempster et al. 2021).

84 kernels of length 9 with weights in {-1, 2} (three 2s) run at exponentially spaced
dilations over random sums of the input channels. Each output is compared with biases taken
from quantiles of the same output on training samples; a feature is the proportion of real
steps where the output exceeds its bias (PPV). MultiRocket's other pooling operators (Tan et
al. 2022) may join it: the mean of the positive values (MPV), the mean index of the steps that
exceed the bias (MIPV) and the longest stretch of such steps (LSPV); and the same kernels may
also run over the first difference of the series. Nothing here is learnt by gradient descent:
`fit` sets the biases (and the features' scaling) once from training data, and the head learns
what to make of them.
With several streams side by side in the channels (video and sensor features), each kernel
sums channels of one stream only, and the streams take turns, so every stream gets its share
of the features however few channels it has.
Half the kernels count every step (zero padding at the ends), half only the steps whose window
lies wholly inside the sequence, as MiniRocket does; padding beyond a sample's length is never
counted, so a sample gets the same features alone or padded in a batch.
Everything here runs in float32 with autocast and TF32 convolutions off: the features are
comparisons with fixed biases, and a model must see the same ones in bf16-mixed or GPU training
as in float32 inference on a CPU.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from feature_extractors.devices import float32_convolutions
from pipeline.models.frontends import padding_mask

KERNEL_LENGTH = 9
_TWOS = torch.tensor(list(itertools.combinations(range(KERNEL_LENGTH), 3)))  # 84 x 3
NUM_KERNELS = len(_TWOS)
MAX_DILATIONS = 32
# kernel output values pooled at once, per device type (others: the GPU's)
CHUNK_VALUES = {"cpu": 2**21, "cuda": 2**25}
# MultiRocket's pooling operators, each a feature per kernel, dilation and bias
KernelPooling = Literal["ppv", "mpv", "mipv", "lspv"]
KERNEL_POOLINGS = KernelPooling.__args__


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
    """Run `method(self, x, lengths, ...)` with autocast and TF32 convolutions off and `x` in
    float32."""

    @functools.wraps(method)
    def wrapper(self, x: torch.Tensor, *args, **kwargs):
        with torch.autocast(x.device.type, enabled=False), float32_convolutions():
            return method(self, x.float(), *args, **kwargs)

    return wrapper


def in_chunks(
    pool: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor, lengths: torch.Tensor, rows: int,
) -> torch.Tensor:  # fmt: skip
    """`pool(x, lengths)` of `x [B, T, D]`, a few samples at a time: those whose kernel outputs
    (`rows` per sample and step) hold `CHUNK_VALUES` values. The outputs are read again for
    every bias or kernel group, and long series run several times faster on a CPU when they
    stay in its caches (and need less memory on a GPU)."""
    values = CHUNK_VALUES.get(x.device.type, CHUNK_VALUES["cuda"])
    chunk = max(1, values // (rows * x.shape[1]))
    if chunk >= len(x):
        return pool(x, lengths)
    return torch.cat(
        [pool(x[i : i + chunk], lengths[i : i + chunk]) for i in range(0, len(x), chunk)]
    )


@torch.no_grad()
def fit_scaling(
    part: nn.Module,
    x: torch.Tensor,
    lengths: torch.Tensor,
    done: Callable[[int], object] | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """Set `part`'s `feature_mean` and `feature_std` to those of its features over training
    samples `x [N, T, D]`, computed `batch_size` samples at a time; `done(n)`, if given, hears
    of each batch of `n` samples as it is through (a progress bar, on long series). Returns
    the samples' pooled outputs `[N, num_features]`, which training need not compute again."""
    batches = []
    for start in range(0, len(x), batch_size):
        batches.append(
            part.pooled(x[start : start + batch_size], lengths[start : start + batch_size])
        )
        if done is not None:
            done(len(batches[-1]))
    pooled = torch.cat(batches)
    part.feature_mean.zero_()
    part.feature_std.fill_(1.0)
    features = part.standardize(pooled)  # unscaled, as yet
    part.feature_mean.copy_(features.mean(0))
    part.feature_std.copy_(features.std(0).nan_to_num(0.0).clamp_min(1e-3))
    return pooled


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x [B, T, D]` with zeros past each sample's length: what it would be padded with alone."""
    return x * padding_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)


def _pool(
    outputs: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor, start: torch.Tensor,
    steps: torch.Tensor, pooling: tuple[str, ...],
) -> list[torch.Tensor]:  # fmt: skip
    """Each of `pooling` `[B, 84]` of kernel outputs `[B, 84, T]` against one bias per kernel
    `[84, 1]`, over the steps `mask` counts: `steps [B, 84]` of them from step `start [B, 84]`.

    ppv: the share of counted steps above the bias; mpv: the mean of (output - bias) over them
    (0 if none); mipv: their mean index within the counted steps (-1 if none); lspv: the longest
    distance between consecutive counted steps below the bias, the counted range's ends included
    (MultiRocket's definition)."""
    above = (outputs > bias) & mask
    count = above.sum(-1, dtype=torch.int32)  # 2-3x count_nonzero's speed on a CPU
    if {"mipv", "lspv"} & set(pooling):  # step indices: as large as the outputs
        index = torch.arange(outputs.shape[-1], device=outputs.device) - start[..., None]
    pooled = {}
    if "ppv" in pooling:
        pooled["ppv"] = count / steps
    if "mpv" in pooling:
        pooled["mpv"] = torch.where(above, outputs - bias, 0.0).sum(-1) / count.clamp_min(1)
    if "mipv" in pooling:
        indices = torch.where(above, index, 0).sum(-1)
        pooled["mipv"] = torch.where(count > 0, indices / count.clamp_min(1), -1.0)
    if "lspv" in pooling:
        below = (outputs < bias) & mask
        last = torch.where(below, index, 0).cummax(-1).values  # last step below, so far
        before = F.pad(last[..., :-1], (1, 0))
        gap = torch.where(below, index - before, 0).amax(-1)
        pooled["lspv"] = torch.maximum(gap, steps - 1 - last[..., -1]).float()
    return [pooled[name] for name in pooling]


def _pool_zeros(
    bias: torch.Tensor, steps: torch.Tensor, pooling: tuple[str, ...]
) -> list[torch.Tensor]:
    """`_pool` of kernel outputs that are all zero (an absent stream's), from the biases
    `[84, count]` and counted steps `[B, 84]` alone: `[B, 84, count]` each."""
    steps = steps[..., None].float()
    above, below = (bias < 0).float(), (bias > 0).float()
    shape = (len(steps), *bias.shape)
    pooled = {
        "ppv": above.expand(shape),
        "mpv": (-bias * above).expand(shape),
        "mipv": above * (steps - 1) / 2 - (1 - above),
        "lspv": below * (steps > 1).float() + (1 - below) * (steps - 1),
    }
    return [pooled[name] for name in pooling]


def first_difference(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's first difference within its own length, right-padded with zeros, and the
    new lengths (one step shorter; a one-step sample's is one zero)."""
    lengths = lengths.to(x.device)
    steps = F.pad(x[:, 1:] - x[:, :-1], (0, 0, 0, 1))
    return _zero_padding(steps, lengths - 1), difference_lengths(lengths)


def difference_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """The lengths of `first_difference`'s samples."""
    return (lengths - 1).clamp_min(1)


class DilatedKernelFeatures(nn.Module):
    """`[B, T, D]` normalized input and lengths -> `[B, num_features]` pooled kernel features.

    Args:
        input_size: channels D; each kernel and dilation sums a random subset of them.
        num_features: about how many features (rounded down to a multiple of 84 times the
            poolings): `num_features / len(pooling)` biases, each pooled every way.
        max_length: the longest training sequence, which sets the largest dilation.
        seed: draws the channel subsets and, in `fit`, the samples the biases come from.
        streams: channels of each stream, in order (summing to D); a kernel's channels all
            come from one stream, kernel k at dilation i from stream (k + i) mod streams.
        pooling: which of `KERNEL_POOLINGS`, in the order of the features (pooling first,
            then dilation, kernel and bias).
        difference: read each sample's first difference instead (`first_difference`).
    """

    def __init__(
        self,
        input_size: int,
        num_features: int,
        max_length: int,
        seed: int = 0,
        streams: list[int] | None = None,
        pooling: tuple[str, ...] = ("ppv",),
        difference: bool = False,
    ) -> None:
        super().__init__()
        unknown = set(pooling) - set(KERNEL_POOLINGS)
        if unknown or not pooling or len(set(pooling)) < len(pooling):
            raise ValueError(f"kernel pooling {list(pooling)}: give some of {KERNEL_POOLINGS}, "
                             "each once")  # fmt: skip
        self.pooling = tuple(pooling)
        self.difference = difference
        longest = max(1, max_length - 1) if difference else max_length
        self.dilations, self.counts = dilations(longest, num_features // len(pooling))
        self.num_biases = NUM_KERNELS * sum(self.counts)
        self.num_features = self.num_biases * len(pooling)
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
            "feature_stream",
            owner.repeat_interleave(counts.flatten()).repeat(len(pooling)),
            persistent=False,
        )
        self.register_buffer("bias", torch.zeros(self.num_biases))
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

    def without_streams(
        self, features: torch.Tensor, missing: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`features [B, F]` as they are when the streams marked in `missing [B, streams]` are
        all zeros (their mean, once normalized): the kernels that read them output zeros."""
        lengths = lengths.to(features.device)
        if self.difference:
            lengths = difference_lengths(lengths)
        per_dilation = [
            _pool_zeros(bias.view(NUM_KERNELS, count), self._counted_steps(lengths, index),
                        self.pooling)
            for index, (count, bias) in enumerate(zip(self.counts, self._biases(), strict=True))
        ]  # fmt: skip
        absent = self.standardize(self._in_order(per_dilation))
        lost = missing.to(features.device)[:, self.feature_stream]  # B x F
        return torch.where(lost, absent.to(features.dtype), features)

    def _biases(self) -> tuple[torch.Tensor, ...]:
        """The biases of each dilation, `[84 * count]` each."""
        return self.bias.split([NUM_KERNELS * c for c in self.counts])

    def _in_order(self, per_dilation: list[list[torch.Tensor]]) -> torch.Tensor:
        """`[B, F]` from each dilation's poolings `[B, 84, count]`: pooling first, then
        dilation, kernel and bias."""
        return torch.cat([
            torch.cat([pooled[p].flatten(1) for pooled in per_dilation], dim=1)
            for p in range(len(self.pooling))
        ], dim=1)  # fmt: skip

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

    def _first_counted(self, lengths: torch.Tensor, index: int) -> torch.Tensor:
        """`[B, 84]` the first step `_masks` counts for each kernel at dilation `index`."""
        edge = 4 * self.dilations[index]
        inside = torch.where(lengths > 2 * edge, edge, 0)[:, None]
        padded = torch.arange(NUM_KERNELS, device=lengths.device) % 2 == index % 2
        return torch.where(padded, 0, inside)

    def _read(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the kernels run over: the series, or its first difference."""
        lengths = lengths.to(x.device)
        return first_difference(x, lengths) if self.difference else (x, lengths)

    @torch.no_grad()
    @in_float32
    def fit(
        self, x: torch.Tensor, lengths: torch.Tensor, done: Callable[[int], object] | None = None
    ) -> torch.Tensor:
        """Set the biases from training samples `x [N, T, D]` (normalized), then the features'
        mean and standard deviation over them (`fit_scaling`, which calls `done` and whose
        pooled outputs are returned), so that `forward` returns standardized features."""
        self._fit_biases(*self._read(x, lengths))
        return fit_scaling(self, x, lengths, done)

    @in_float32
    def _fit_biases(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Each kernel at each dilation takes quantiles of its output on one random sample."""
        x = _zero_padding(x, lengths.to(x.device))
        generator = torch.Generator().manual_seed(self.seed)
        biases = []
        quantiles = (
            _quantiles(self.num_biases).to(x.device).split([NUM_KERNELS * c for c in self.counts])
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

    @torch.no_grad()
    @in_float32
    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled kernel outputs `[B, num_features]` (float32) of normalized right-padded
        `x [B, T, D]`; `standardize` makes them the features. Fixed once fitted, so training
        can keep them (`KernelFeatureMemo`)."""
        x, lengths = self._read(x, lengths)
        x = _zero_padding(x, lengths)
        return in_chunks(self._pooled, x, lengths, NUM_KERNELS)

    def _pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        per_dilation = []
        for index, (count, bias) in enumerate(zip(self.counts, self._biases(), strict=True)):
            outputs = self._outputs(x, index)  # B x 84 x T
            mask = self._masks(lengths, x.shape[1], index)
            start, steps = self._first_counted(lengths, index), self._counted_steps(lengths, index)
            bias = bias.view(NUM_KERNELS, count, 1)
            per_bias = [  # one bias at a time: long inputs stay within memory
                _pool(outputs, bias[:, j], mask, start, steps, self.pooling) for j in range(count)
            ]
            per_dilation.append([torch.stack(p, dim=2) for p in zip(*per_bias, strict=True)])
        return self._in_order(per_dilation)

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` from `pooled`'s output: less the
        features' training mean, over their standard deviation."""
        return (pooled.float() - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` of normalized right-padded
        `x [B, T, D]`, the same under autocast as without."""
        return self.standardize(self.pooled(x, lengths))
