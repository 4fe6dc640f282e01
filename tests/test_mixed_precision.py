"""bf16-mixed precision with the GPU preset, on the CPU (CPU autocast has CUDA's dtype rules) and,
under the `gpu` marker, on a CUDA GPU: the default model trains, tests, predicts, classifies and
explains on every kind of data, and its predictions match float32's within bfloat16's
tolerance. The CPU runs work on any x86-64 CPU (AVX2 too)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from feature_extractors.signal import SignalPreprocessing
from pipeline.apply.classify import load_classifier
from pipeline.cli import main
from pipeline.prepare.sample_data import make_fusion_dataset, make_machine_dataset

from conftest import write_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GPU_PRESET = f"--trainer={CONFIGS / 'trainer' / 'gpu.yaml'}"
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]  # fmt: skip
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
VIBRATION = CONFIGS / "fusion" / "vibration.yaml"


def probabilities(path: Path) -> dict[str, torch.Tensor]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return {
        r["path"]: torch.tensor([float(v) for k, v in r.items() if k.startswith("prob_")])
        for r in rows
    }


def train_and_apply(data: list[str], raw: Path, tmp: Path, capsys, device: str) -> None:
    """fit, test and predict under bf16-mixed with the default model on `device`, predict again
    in float32, then classify and explain raw inputs there with the bf16-trained checkpoint."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    bf16 = [GPU_PRESET, "--trainer.precision=bf16-mixed", f"--trainer.accelerator={accelerator}"]
    common = [*data, *QUIET, "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp / 'run'}"]
    main(["fit", *common, *bf16])
    best = f"--ckpt_path={tmp / 'run' / 'checkpoints' / 'last.ckpt'}"
    main(["test", *common, *bf16, best])
    assert "test: accuracy=" in capsys.readouterr().out
    predicted = {}
    fp32 = [f"--trainer.accelerator={accelerator}", "--trainer.devices=1"]
    for name, precision in (("bf16", bf16), ("fp32", fp32)):
        root = tmp / name
        main(["predict", *data, *QUIET, *precision, best, f"--trainer.default_root_dir={root}"])
        predicted[name] = probabilities(next(root.glob("version_*/predictions.csv")))
    assert predicted["bf16"].keys() == predicted["fp32"].keys() and predicted["bf16"]
    bf16, fp32 = (torch.stack(list(p.values())) for p in (predicted["bf16"], predicted["fp32"]))
    assert not torch.equal(bf16, fp32)  # bfloat16 really ran
    torch.testing.assert_close(bf16, fp32, atol=0.03, rtol=0)  # within bf16's 8-bit mantissa

    checkpoint = str(tmp / "run" / "checkpoints" / "last.ckpt")
    main(["classify", str(raw), "--checkpoint", checkpoint, "--out", str(tmp / "classify.csv"),
          "--num-workers", "1", "--device", device])  # fmt: skip
    with (tmp / "classify.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) > 0
    main(["explain", str(raw), "--checkpoint", checkpoint, "--out", str(tmp / "explain"),
          "--num-workers", "1", "--steps", "4", "--device", device])  # fmt: skip
    assert list((tmp / "explain").glob("*.png"))
    main(["export", "--checkpoint", checkpoint, "--out", str(tmp / "model.ts"), "--device", device])
    assert_export_is_the_network(tmp / "model.ts", checkpoint, tmp / "classify.csv", device)


def assert_export_is_the_network(path: Path, checkpoint: str, classified: Path, device: str):
    """The exported module of a model over feature sequences gives its network's logits, at
    batch sizes and lengths other than the trace's; for a signal chain, on the features that
    the printed recipe makes of the recordings, `classify`'s probabilities (a video model's
    export, frames -> logits, is checked against the pipeline in test_classify)."""
    info = {"seqclass.json": ""}
    module = torch.jit.load(path, _extra_files=info, map_location=device)
    info = json.loads(info["seqclass.json"])
    if info["frame_size"] is not None:
        return
    classifier = load_classifier(checkpoint)
    net, width = classifier.net.to(device), classifier.hparams.input_size
    assert info["inputs"].startswith(f"features [B, T, {width}]")
    x = torch.randn(3, 41, width, device=device)
    lengths = torch.tensor([41, 30, 9], device=device)
    # a GPU may pick other kernels (and TF32 convolutions) for another batch: rounding apart
    tolerance = {"rtol": 0, "atol": 0 if device == "cpu" else 1e-3}
    with torch.no_grad():
        torch.testing.assert_close(module(x, lengths), net(x, lengths), **tolerance)
    if info["feature_settings"]["kind"] != "signal":
        return
    chain = SignalPreprocessing.from_settings(info["feature_settings"])
    with classified.open() as fh:
        rows = list(csv.DictReader(fh))
    sequences = [torch.tensor(chain.process(r["path"]).data.T, dtype=torch.float32) for r in rows]
    lengths = torch.tensor([len(s) for s in sequences], device=device)
    x = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True).to(device)
    with torch.no_grad():
        probs = module(x, lengths).softmax(-1).cpu()
    listed = torch.tensor([[float(v) for k, v in r.items() if k.startswith("prob_")] for r in rows])
    torch.testing.assert_close(probs, listed, rtol=0, atol=max(tolerance["atol"], 1e-5))


@pytest.mark.parametrize("device", DEVICES)
def test_a_signal_chain_in_bf16(tmp_path: Path, capsys, device: str) -> None:
    raw = make_machine_dataset(tmp_path / "wavs", recordings_per_class=6)
    data = [f"--data.root={raw}", f"--data.signal={VIBRATION}"]
    train_and_apply(data, raw / "bearing_fault", tmp_path, capsys, device)


@pytest.mark.parametrize("device", DEVICES)
def test_video_features_with_motion_in_bf16(tmp_path: Path, capsys, device: str) -> None:
    """Appearance and motion: two streams, each with its own encoder (late fusion)."""
    videos = tmp_path / "videos"
    for label, step in (("left", -1), ("right", 1)):
        for i in range(5):
            write_video(videos / label / f"{i}.avi", frames=6 + i, step=step)
    main(["extract", str(videos), "--out", str(tmp_path / "features"), "--backbone",
          "efficientnet_lite0", "--projection", "32", "--motion", "dis", "--num-workers", "1",
          "--device", device])  # fmt: skip
    data = [f"--data.root={tmp_path / 'features'}"]
    train_and_apply(data, videos / "left", tmp_path, capsys, device)


@pytest.mark.parametrize("device", DEVICES)
def test_fused_video_and_vibration_in_bf16(tmp_path: Path, capsys, device: str) -> None:
    raw = make_fusion_dataset(tmp_path / "fusion", samples_per_class=4)
    main(["extract", str(raw), "--out", str(tmp_path / "features"), "--backbone", "none",
          "--motion", "dis", "--sampling", "fps", "--sampling-value", "6", "--num-workers", "1",
          "--signal", str(VIBRATION), "--device", device])  # fmt: skip
    data = [f"--data.root={tmp_path / 'features'}"]
    train_and_apply(data, raw / "pan_left-healthy", tmp_path, capsys, device)
