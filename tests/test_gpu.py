"""Checks that need a CUDA GPU (`make test-gpu`; skipped without one): extraction and the kernel
features on the GPU against the CPU, two DDP processes sharing one GPU, a model exported for the
GPU, and the kept kernel features in page-locked memory. The bf16-mixed runs of every data kind on the GPU are in
`test_mixed_precision.py`, the signal chain on the GPU in `test_signal_batching.py`."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from pipeline.cli import main
from pipeline.models.hydra_features import HydraFeatures
from pipeline.models.kernel_features import DilatedKernelFeatures
from pipeline.prepare.sample_data import make_signal_dataset
from pipeline.training.kernel_memo import KernelFeatureMemo

from conftest import write_video

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def features_of(out: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(out).as_posix(): np.load(p)["features"] for p in sorted(out.rglob("*.npz"))
    }


def test_extraction_on_the_gpu_gives_the_cpus_features(tmp_path: Path) -> None:
    """float32 with TF32 off on both: the same features up to the order of the sums (relative
    1e-4); bf16-mixed on the GPU stays within the 2-4% it has on the CPU."""
    videos = tmp_path / "videos"
    for label, photo in (("a", data.coffee()), ("b", data.chelsea())):
        write_video(videos / label / "0.avi", frames=6, image=photo)
    common = ["--backbone", "efficientnet_lite0", "--num-workers", "1", "--motion", "dis"]
    for device in ("cpu", "cuda"):
        main(["extract", str(videos), "--out", str(tmp_path / device), *common, "--device", device])
    main(["extract", str(videos), "--out", str(tmp_path / "bf16"), *common, "--device", "cuda",
          "--precision", "bf16-mixed"])  # fmt: skip
    cpu, cuda, bf16 = (features_of(tmp_path / n) for n in ("cpu", "cuda", "bf16"))
    for name, expected in cpu.items():
        for got, tolerance in ((cuda[name], 1e-4), (bf16[name], 0.06)):
            error = np.linalg.norm(got - expected, axis=1) / np.linalg.norm(expected, axis=1)
            assert error.max() < tolerance, (name, error.max())


def test_kernel_features_on_the_gpu_are_the_cpus() -> None:
    """Fitted on the CPU, applied on both in float32 (TF32 off): the dilated kernels' outputs
    are proportions of steps above fixed biases and Hydra's are counts of winning kernels, so
    only outputs within rounding of a bias or of a rival may count apart: one entry in a
    thousand at most. (On the CPU, inputs 5e-4 apart, TF32's rounding, move 1-20 % of the
    entries; 1e-6 apart, under 1e-5 of them.)"""
    torch.manual_seed(0)
    train, x = torch.randn(16, 200, 3), torch.randn(16, 200, 3)
    train_lengths, lengths = torch.full((16,), 200), torch.randint(20, 201, (16,))
    for module in (DilatedKernelFeatures(3, 10_000, 200), HydraFeatures(3, 200)):
        module.fit(train, train_lengths)
        cpu = module.pooled(x, lengths)
        gpu = copy.deepcopy(module).to("cuda").pooled(x.cuda(), lengths.cuda()).cpu()
        apart = ~torch.isclose(gpu, cpu, rtol=1e-4, atol=1e-5)
        assert apart.float().mean() < 1e-3, (type(module).__name__, apart.float().mean())


def two_ranks_on_one_gpu(*args: str) -> None:
    """`seqclass ARGS` as two DDP processes that share GPU 0 (gloo: NCCL refuses that)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp = ["--trainer.accelerator=gpu", "--trainer.devices=1", "--trainer.num_nodes=2",
           "--trainer.strategy=pytorch_lightning.strategies.DDPStrategy",
           "--trainer.strategy.process_group_backend=gloo", "--trainer.sync_batchnorm=true"]  # fmt: skip
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args, *ddp],
            env={
                **os.environ,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "WORLD_SIZE": "2",
                "NODE_RANK": str(rank),
                "LOCAL_RANK": "0",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for rank in range(2)
    ]
    for rank in ranks:
        out, err = rank.communicate(timeout=300)
        assert rank.returncode == 0, err[-3000:]


def test_two_processes_on_one_gpu_fit_and_test_exactly(tmp_path: Path) -> None:
    root = make_signal_dataset(tmp_path / "signals", samples_per_class=16, length_range=(40, 80))
    common = [f"--data.root={root}", *QUIET, "--data.batch_size=8"]
    two_ranks_on_one_gpu("fit", *common, "--trainer.max_epochs=2", "--trainer.precision=bf16-mixed",
                         f"--trainer.default_root_dir={tmp_path / 'fit'}")  # fmt: skip
    best = f"--ckpt_path={tmp_path / 'fit' / 'checkpoints' / 'last.ckpt'}"
    two_ranks_on_one_gpu("test", *common, best, f"--trainer.default_root_dir={tmp_path / 'two'}")
    main(["test", *common, best, "--trainer.accelerator=gpu", "--trainer.devices=1",
          f"--trainer.default_root_dir={tmp_path / 'one'}"])  # fmt: skip
    one, two = (json.loads(next((tmp_path / n).glob("version_*/metrics.json")).read_text())
                for n in ("one", "two"))  # fmt: skip
    assert two["confusion_matrix"] == one["confusion_matrix"]  # every sample counted once
    assert two["accuracy"] == one["accuracy"]


def test_an_exported_video_model_runs_on_the_gpu(tmp_path: Path) -> None:
    videos, features, runs = tmp_path / "videos", tmp_path / "features", tmp_path / "runs"
    for label, step in (("left", -1), ("right", 1)):
        for i in range(3):
            write_video(videos / label / f"{i}.avi", frames=6, step=step)
    main(["extract", str(videos), "--out", str(features), "--backbone", "efficientnet_lite0",
          "--num-workers", "1", "--device", "cuda"])  # fmt: skip
    main(["fit", f"--data.root={features}", *QUIET, "--trainer.max_epochs=1",
          "--trainer.accelerator=gpu", f"--trainer.default_root_dir={runs}"])  # fmt: skip
    checkpoint = str(runs / "checkpoints" / "last.ckpt")
    frames, lengths = torch.rand(2, 5, 3, 224, 224), torch.tensor([5, 3])
    motion = torch.randn(2, 5, 29) * 0.01
    logits = {}
    for device in ("cpu", "cuda"):  # a trace keeps its devices: one export for each
        out = tmp_path / f"{device}.ts"
        main(["export", "--checkpoint", checkpoint, "--out", str(out), "--device", device])
        module = torch.jit.load(str(out))  # the default: frames and motion
        # cuDNN's TF32 default left on: the export keeps float32 convolutions all the same
        with torch.no_grad():
            inputs = (frames.to(device), lengths.to(device), motion.to(device))
            logits[device] = module(*inputs).cpu()
    torch.testing.assert_close(logits["cuda"], logits["cpu"], rtol=1e-3, atol=1e-3)


def test_kept_kernel_features_reach_the_gpu_from_page_locked_memory() -> None:
    """Pinned, the rows' copy to the GPU does not wait for the steps before it."""
    memo = KernelFeatureMemo(8, {"train": 4})
    rows, missing = memo.lookup("train", torch.arange(4), pin=True)
    assert rows.is_pinned() and missing == [0, 1, 2, 3]
    memo.store("train", [0, 2], torch.ones(2, 8, device="cuda"))
    rows, missing = memo.lookup("train", torch.arange(4), pin=True)
    assert rows.is_pinned() and missing == [1, 3] and rows[[0, 2]].eq(1).all()
