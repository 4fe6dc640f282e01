"""`seqclass explain`: integrated gradients over time and features, attention, pictures."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.axes
import matplotlib.image
import numpy as np
import pytest
import torch

from pipeline.apply.explain import integrated_gradients
from pipeline.cli import main

from conftest import plain_net

FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--model.hidden_size=16", "--data.batch_size=8"]  # fmt: skip


@pytest.mark.parametrize(
    ("pooling", "frontend", "stride"),
    [("last", "none", 1), ("attention", "none", 1), ("attention", "conv", 3), ("mean", "fcn", 2)],
)
def test_attributions_add_up_to_the_change_in_the_logit(
    pooling: str, frontend: str, stride: int
) -> None:
    torch.manual_seed(0)
    net = plain_net(3, 4, hidden_size=8, bidirectional=True, pooling=pooling,
                      frontend=frontend, conv_channels=8, stride=stride).eval()  # fmt: skip
    net.channel_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(30, 3)
    attributions = integrated_gradients(net, x, target=2, steps=128)
    assert attributions.shape == (30, 3)
    with torch.no_grad():
        gain = (
            net(x[None], torch.tensor([30]))[0, 2]
            - net(net.channel_mean.expand(1, 30, 3), torch.tensor([30]))[0, 2]
        )
    assert attributions.sum().item() == pytest.approx(gain.item(), rel=0.02, abs=1e-4)


def assert_picture(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300 and image[..., :3].std() > 0.05


@pytest.mark.parametrize(("frontend", "stride"), [("conv", 3), ("fcn", 2)])
def test_explain_sequence_files(
    signal_root: Path, tmp_path: Path, capsys, frontend: str, stride: int
) -> None:
    """Attention over the strided recurrent steps is spread back over the input steps."""
    runs = tmp_path / "runs"
    main(["fit", *FAST, f"--data.root={signal_root}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=2", "--model.pooling=attention", f"--model.frontend={frontend}",
          f"--model.stride={stride}"])  # fmt: skip
    files = sorted((signal_root / "rising").glob("*.npy"))[:2]
    out, last = tmp_path / "explain", str(runs / "checkpoints" / "last.ckpt")
    main(["explain", *map(str, files), "--checkpoint", last, "--out", str(out),
          "--target", "rising"])  # fmt: skip
    assert "explain: 2 explained" in capsys.readouterr().out
    for f in files:
        with np.load(out / f"{f.stem}.npz") as npz:
            steps = len(np.load(f))
            assert npz["importance"].shape == (steps,) and npz["attention"].shape == (steps,)
            assert npz["attributions"].shape == (steps, 3) and str(npz["class_name"]) == "rising"
            np.testing.assert_allclose(npz["attention"].sum(), 1.0, rtol=1e-5)
        assert_picture(out / f"{f.stem}.png")
    with (out / "explain.csv").open() as fh:
        assert [r["explained_class"] for r in csv.DictReader(fh)] == ["rising", "rising"]
    with pytest.raises(SystemExit):
        main(["explain", str(files[0]), "--checkpoint", last, "--target", "x"])
    assert "is not one of the model's classes" in capsys.readouterr().err


def test_explain_names_a_csv_files_channels_by_its_header(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(6):
            rows = rng.normal(size=(20, 2)) + (label == "b")
            np.savetxt(tmp_path / "data" / label / f"{i}.csv", rows, delimiter=",",
                       header="accel_x,accel_y", comments="")  # fmt: skip
    runs = tmp_path / "runs"
    main(["fit", *FAST, f"--data.root={tmp_path / 'data'}", f"--trainer.default_root_dir={runs}",
          "--trainer.max_epochs=1"])  # fmt: skip
    labels = []
    set_ylabel = matplotlib.axes.Axes.set_ylabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylabel",
                        lambda ax, text, *a, **k: labels.append(text) or set_ylabel(ax, text, *a, **k))  # fmt: skip
    main(["explain", str(tmp_path / "data" / "a" / "0.csv"), "--out", str(tmp_path / "explain"),
          "--checkpoint", str(runs / "checkpoints" / "last.ckpt")])  # fmt: skip
    assert "explain: 1 explained" in capsys.readouterr().out
    assert labels[:2] == ["accel_x", "accel_y"]
