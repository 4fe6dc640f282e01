"""The kernel head: fixed kernel features of the input and the linear layer that reads them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pipeline.models.hydra_features import HydraFeatures
from pipeline.models.kernel_features import DilatedKernelFeatures


class KernelHead(nn.Module):
    """Fixed dilated-kernel features and the linear layer that reads them: logits
    `[B, num_classes]` to add to the recurrent network's.

    The layer starts at zero, so the head starts in the span of the training features (as
    ridge regression does). The features are fitted once (`fit`) and never trained: `kernels`
    over the series and, with `difference`, `difference_kernels` over its first difference,
    the features shared out evenly between the two (as MultiRocket does); with `hydra`,
    Hydra's competing-kernel counts besides.

    Args:
        input_size, num_features, max_length, streams, pooling: as for `DilatedKernelFeatures`.
        num_classes: the logits' width.
        difference: also run the kernels over the first difference.
        hydra: add `HydraFeatures` (2,048 features per dilation; dilations 1, 2, 4, ...).
    """

    def __init__(
        self,
        input_size: int,
        num_features: int,
        max_length: int,
        num_classes: int,
        *,
        streams: list[int] | None = None,
        pooling: tuple[str, ...] = ("ppv",),
        difference: bool = False,
        hydra: bool = False,
    ) -> None:
        super().__init__()
        share = num_features // 2 if difference else num_features
        options = {"streams": streams, "pooling": pooling}
        self.kernels = DilatedKernelFeatures(input_size, share, max_length, **options)
        self.difference_kernels = None
        if difference:
            self.difference_kernels = DilatedKernelFeatures(
                input_size, share, max_length, seed=1, difference=True, **options
            )
        self.hydra = HydraFeatures(input_size, max_length, streams=streams) if hydra else None
        self.num_features = sum(part.num_features for part in self._parts())
        self.linear = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def _parts(self) -> list[nn.Module]:
        parts = (self.kernels, self.difference_kernels, self.hydra)
        return [part for part in parts if part is not None]

    def fit(
        self, x: torch.Tensor, lengths: torch.Tensor, done: Callable[[int], object] | None = None
    ) -> torch.Tensor:
        """Fit each part's biases and scaling to normalized training samples `x [N, T, D]`;
        `done(n)` hears of each batch of `n` samples a part is through (`fitting_passes`).
        Returns the samples' pooled outputs `[N, num_features]`, as `pooled` gives them."""
        return torch.cat([part.fit(x, lengths, done) for part in self._parts()], dim=1)

    @property
    def fitting_passes(self) -> int:
        """How many times `fit` goes over the samples (once a part)."""
        return len(self._parts())

    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Every part's pooled outputs `[B, num_features]` of normalized `x [B, T, D]`."""
        return torch.cat([part.pooled(x, lengths) for part in self._parts()], dim=1)

    def _split(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return features.split([part.num_features for part in self._parts()], dim=1)

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` from `pooled`'s output."""
        return torch.cat([
            part.standardize(p) for part, p in zip(self._parts(), self._split(pooled), strict=True)
        ], dim=1)  # fmt: skip

    def features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Standardized float32 features `[B, num_features]` of normalized right-padded
        `x [B, T, D]`, the same under autocast as without."""
        return self.standardize(self.pooled(x, lengths))

    def without_streams(
        self, features: torch.Tensor, missing: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`features` as they are when the streams marked in `missing [B, streams]` are zeros."""
        return torch.cat([
            part.without_streams(f, missing, lengths)
            for part, f in zip(self._parts(), self._split(features), strict=True)
        ], dim=1)  # fmt: skip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of standardized kernel features `[B, num_features]` (`features`' output)."""
        return self.linear(features.to(self.linear.weight.dtype))
