"""GPU throughput, measured side by side in one run (runs on the CPU too, for a check).

1. Training sequences/s of the BiLSTM on variable-length batches: right-padded (this project)
   vs packed sequences (cuDNN's packed kernels), each in fp32 and under bf16 autocast, and the
   cost of deterministic mode (`--trainer.deterministic true`); then the default network in
   fp32 and bf16 (what the GPU presets' precision is chosen by).
2. Video feature extraction frames/s with GoogLeNet on 320x240 clips: decoding alone, the CNN
   alone, and the whole pipeline with 0..N decode workers, which shows whether it is bound by
   decoding or by the GPU. Speed does not depend on the weights, so untrained weights are used
   (no download needed).
3. DDP: the same training step over two processes sharing this one device (gloo), global batch
   kept, against one process.

    python benchmarks/bench_gpu.py [--device cuda] [--steps 50] [--workers 0 2 4 8]
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from bench_extract import cnn_fps, decode_fps, write_clip
from bench_train import CLASSES, PackedLSTM, make_items, raw_loop
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from feature_extractors.video import FrameSampling, build_backbone, iter_frame_chunks
from pipeline.data.batching import pad_collate
from pipeline.models.config import NetConfig
from pipeline.models.sequence_net import SequenceNet
from pipeline.prepare.extract import extract_videos

from common import machine


def bilstm(args: argparse.Namespace) -> SequenceNet:
    torch.manual_seed(0)
    config = NetConfig(hidden_size=args.hidden, pooling="last", frontend="none", kernel_features=0)
    return SequenceNet(args.channels, len(CLASSES), config)


def default_network(args: argparse.Namespace) -> SequenceNet:
    """The default network without its kernel features, which are computed once per sample and
    kept (`KernelFeatureMemo`), so a training step does not recompute them."""
    torch.manual_seed(0)
    return SequenceNet(args.channels, len(CLASSES), NetConfig(kernel_features=0))


def training(args: argparse.Namespace) -> None:
    items = make_items(args.batch * 8, args.channels, (50, 350))
    loader = DataLoader(items, batch_size=args.batch, shuffle=True, collate_fn=pad_collate,
                        pin_memory=args.device.startswith("cuda"))  # fmt: skip
    print(f"\nTraining: BiLSTM hidden {args.hidden}, batch {args.batch}, {args.channels} channels,"
          " lengths 50-350\n\n| model | precision | sequences/s | x padded fp32 |\n"
          "| --- | --- | ---: | ---: |")  # fmt: skip
    runs = [  # (network, bf16, deterministic)
        ("padded", False, False), ("padded", True, False), ("packed", False, False),
        ("packed", True, False), ("padded", False, True), ("default", False, False),
        ("default", True, False),
    ]  # fmt: skip
    builders = {"padded": bilstm, "default": default_network,
                "packed": lambda a: PackedLSTM(a.channels, a.hidden, bidirectional=True)}  # fmt: skip
    nets = {run: builders[run[0]](args) for run in runs}
    rates = dict.fromkeys(runs, 0.0)
    for repeat in range(1 + args.repeats):  # alternate, best of each: noise hits all alike
        for run in runs:
            _, bf16, deterministic = run
            torch.use_deterministic_algorithms(deterministic)
            torch.backends.cudnn.benchmark = False
            net = nets[run].to(args.device)
            steps = 3 if repeat == 0 else args.steps  # the first round warms up: cuDNN, allocator
            rate = args.batch * raw_loop(net, loader, steps, args.device, bf16)
            rates[run] = max(rates[run], rate) if repeat else 0.0
    torch.use_deterministic_algorithms(False)
    base = rates["padded", False, False]
    default = {bf16: rates.pop(("default", bf16, False)) for bf16 in (False, True)}
    for (name, bf16, deterministic), rate in rates.items():
        label = f"{name}{', deterministic' if deterministic else ''}"
        print(f"| {label} | {'bf16-mixed' if bf16 else 'fp32'} | {rate:.0f} | {rate / base:.2f} |")
    print(f"\nThe default network (hidden 64, convolutional front end; its kernel features are kept,"
          f" not recomputed in a step): fp32 {default[False]:.0f} sequences/s, bf16-mixed "
          f"{default[True]:.0f} ({default[True] / default[False]:.2f}x)")  # fmt: skip


def extraction(args: argparse.Namespace) -> None:
    backbone = build_backbone("googlenet", weights="random")
    model = backbone.model.to(args.device, memory_format=torch.channels_last).eval()
    batch = 64 if args.device.startswith("cuda") else 8
    with tempfile.TemporaryDirectory() as tmp:
        videos = [write_clip(Path(tmp) / f"v/{i}.avi", args.frames, i) for i in range(args.videos)]
        frames = torch.cat(
            [
                backbone.preprocess(torch.from_numpy(f).permute(0, 3, 1, 2))
                for f, _ in iter_frame_chunks(videos[0], FrameSampling(), 64)
            ]
        )
        rates = {
            "decode + preprocess, 1 process": decode_fps(videos, backbone.preprocess),
            f"GoogLeNet alone, batch {batch}": cnn_fps(backbone, model, frames, batch, args.device),
        }
        for workers in args.workers:
            start = time.perf_counter()
            report = extract_videos(Path(tmp) / "v", Path(tmp) / f"f{workers}", backbone=backbone,
                                    sampling=FrameSampling(), batch_size=batch, num_workers=workers,
                                    device=args.device)  # fmt: skip
            rates[f"pipeline, {workers} decode workers"] = report.frames / (
                time.perf_counter() - start
            )
    cnn = rates[f"GoogLeNet alone, batch {batch}"]
    print(f"\nExtraction: GoogLeNet, {args.videos} videos x {args.frames} frames at 320x240\n\n"
          "| stage | frames/s | x CNN alone |\n| --- | ---: | ---: |")  # fmt: skip
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / cnn:.2f} |")
    decode, best = rates["decode + preprocess, 1 process"], max(list(rates.values())[2:])
    if best > 0.8 * cnn:
        verdict = "compute-bound"
    elif decode < cnn:
        verdict = "decode-bound"
    else:
        verdict = "decoding and the CNN compete for the CPU cores"
    print(
        f"\nOne decoding process feeds the CNN {decode / cnn:.0%} of the frames it can take: "
        f"{math.ceil(cnn / decode)} decode worker(s), each with a free core, keep it busy. "
        f"The best pipeline run reaches {best / cnn:.0%} of the CNN alone: {verdict}."
    )


def ddp_rank(rank: int, world: int, port: int, args: argparse.Namespace, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)  # gloo: ranks may share a GPU
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    items = make_items(args.batch * 8, args.channels, (50, 350))[rank::world]
    loader = DataLoader(items, batch_size=args.batch // world, collate_fn=pad_collate)
    net = DistributedDataParallel(bilstm(args).to(args.device))
    raw_loop(net, loader, 3, args.device)
    rate = raw_loop(net, loader, args.steps, args.device)  # steps/s, each step the global batch
    if rank == 0:
        out.put(rate * args.batch)
    dist.destroy_process_group()


def ddp(args: argparse.Namespace) -> None:
    rates = {}
    for world in (1, 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        mp.spawn(ddp_rank, args=(world, port, args, queue), nprocs=world)
        rates[world] = queue.get()
    print(
        f"\nDDP on one {args.device} device, global batch {args.batch}: 1 process "
        f"{rates[1]:.0f} sequences/s, 2 processes {rates[2]:.0f} ({rates[2] / rates[1]:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds, best kept")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--only", choices=["training", "extraction", "ddp"])
    args = parser.parse_args()
    print(machine(args.device))
    for part in (training, extraction, ddp):
        if args.only in (None, part.__name__):
            part(args)


if __name__ == "__main__":
    main()
