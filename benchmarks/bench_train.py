"""Training throughput, measured side by side in one run.

1. The same SequenceNet and batches trained by the LightningModule (Trainer.fit) and by a raw
   PyTorch loop: steps/s of each and the Lightning overhead.
2. Equal-length vs variable-length batches.
3. Right-padded (this project) vs packed sequences (`pack_padded_sequence`) on variable lengths.

    python benchmarks/bench_train.py [--steps 30] [--hidden 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import platform
import time

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader

from pipeline.data.batching import pad_collate
from pipeline.training.lit_module import SequenceClassifier

from common import sync

CLASSES = ["a", "b", "c", "d"]


def make_items(count: int, channels: int, lengths: tuple[int, int], seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    steps = torch.randint(lengths[0], lengths[1] + 1, (count,), generator=g)
    return [
        {"x": torch.randn(int(t), channels, generator=g), "y": i % len(CLASSES), "index": i}
        for i, t in enumerate(steps)
    ]


class PackedLSTM(nn.Module):
    """Reference: the same computation through cuDNN/ATen packed sequences."""

    def __init__(self, input_size: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), len(CLASSES))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.head(torch.cat(list(h), dim=-1))


def raw_loop(
    net: nn.Module, loader: DataLoader, steps: int, device: str = "cpu", bf16: bool = False
) -> float:
    """Steps per second of a plain PyTorch training loop (`bf16`: under bf16 autocast)."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    device_type = torch.device(device).type
    sync(device)
    done, start = 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            x, y = batch["x"].to(device, non_blocking=True), batch["y"].to(device)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type, torch.bfloat16, enabled=bf16):
                loss = loss_fn(net(x, batch["lengths"]), y)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    sync(device)
    return steps / (time.perf_counter() - start)


def lightning_fit(model: SequenceClassifier, loader: DataLoader, steps: int) -> float:
    """Steps per second of Trainer.fit on the same model and batches."""
    trainer = pl.Trainer(
        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads,"
          f" torch {torch.__version__}, hidden {args.hidden}, batch {args.batch}")  # fmt: skip
    print(f"{'batches':<22}{'model':<34}{'steps/s':>9}")
    for name, lengths in (("equal length 200", (200, 200)), ("variable 50-350", (50, 350))):
        items = make_items(args.batch * 8, args.channels, lengths)
        loader = DataLoader(items, batch_size=args.batch, shuffle=True, collate_fn=pad_collate)
        results = {}
        for label, bidirectional in (("LSTM", False), ("BiLSTM", True)):
            torch.manual_seed(0)
            model = SequenceClassifier(
                hidden_size=args.hidden, bidirectional=bidirectional, class_names=CLASSES,
                input_size=args.channels,
            )  # fmt: skip
            raw_loop(model.net, loader, 3)  # warm-up
            # Alternate the two and keep the best of each, so machine noise hits both alike.
            raw, lit = [], []
            for _ in range(args.repeats):
                raw.append(raw_loop(model.net, loader, args.steps))
                lit.append(lightning_fit(model, loader, args.steps))
            results[f"{label} raw loop"] = max(raw)
            results[f"{label} Lightning"] = max(lit)
            if lengths[0] != lengths[1]:
                packed = PackedLSTM(args.channels, args.hidden, bidirectional)
                raw_loop(packed, loader, 3)
                results[f"{label} packed raw loop"] = raw_loop(packed, loader, args.steps)
        for model_name, rate in results.items():
            print(f"{name:<22}{model_name:<34}{rate:>9.2f}")
        for label in ("LSTM", "BiLSTM"):
            overhead = results[f"{label} raw loop"] / results[f"{label} Lightning"] - 1
            line = f"{name:<22}{label}: Lightning overhead {100 * overhead:+.1f} %"
            if f"{label} packed raw loop" in results:
                speedup = results[f"{label} raw loop"] / results[f"{label} packed raw loop"]
                line += f"; padded is {speedup:.2f}x the speed of packed"
            print(line)


if __name__ == "__main__":
    main()
