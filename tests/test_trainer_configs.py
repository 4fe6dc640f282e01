"""The trainer presets in configs/trainer/ and the deterministic switch, on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from pytorch_lightning.accelerators import CPUAccelerator

from feature_extractors.devices import bf16_emulated
from pipeline.cli import command_parser, main
from pipeline.core.presets import PRESETS
from pipeline.training.lightning_cli import make_cli

TRAINER_CONFIGS = sorted(Path("configs/trainer").glob("*.yaml"))
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--model.hidden_size=16", "--data.batch_size=8"]  # fmt: skip


@pytest.mark.parametrize("preset", TRAINER_CONFIGS, ids=lambda p: p.name)
def test_each_preset_combines_with_a_config(preset: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config=configs/demo.yaml", f"--trainer={preset}", "--trainer.devices=4",
              "--print_config"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert str(trainer["devices"]) == "4"  # the command line wins over the preset
    assert trainer["max_epochs"] == 40  # and the preset keeps the rest of the config
    for key, value in yaml.safe_load(preset.read_text()).items():
        if key != "devices":
            assert trainer[key] == value


def test_the_shipped_presets_are_found_from_any_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    shipped = sorted(p.relative_to(PRESETS) for p in PRESETS.rglob("*.yaml"))
    assert shipped == sorted(p.relative_to("configs") for p in Path("configs").rglob("*.yaml"))
    monkeypatch.chdir(tmp_path)  # a data folder: no configs/ here

    def trainer(*args: str) -> dict:
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", "configs/demo.yaml", *args, "--print_config"])
        assert exit_info.value.code in (0, None)
        return yaml.safe_load(capsys.readouterr().out)["trainer"]

    ddp = yaml.safe_load((PRESETS / "trainer" / "ddp.yaml").read_text())
    assert trainer("--trainer", "configs/trainer/ddp.yaml")["strategy"] == ddp["strategy"]
    assert trainer("--trainer=configs/trainer/ddp.yaml")["sync_batchnorm"] is True
    own = tmp_path / "configs" / "trainer" / "ddp.yaml"  # a file of that name here wins
    own.parent.mkdir(parents=True)
    own.write_text("max_epochs: 3\n")
    assert trainer("--trainer", "configs/trainer/ddp.yaml")["max_epochs"] == 3
    with pytest.raises(SystemExit):  # a name that is no preset stays as given
        main(["fit", "--config", "configs/nothing.yaml", "--print_config"])
    assert "configs/nothing.yaml" in capsys.readouterr().err
    space = command_parser("tune").parse_known_args([])[0].space
    assert space == PRESETS / "tune" / "space.yaml" and space.is_file()


@pytest.mark.parametrize("preset", ["ddp.yaml", "ddp_multinode.yaml"])
def test_several_process_presets_share_batch_norm_statistics(preset: str, capsys) -> None:
    """One device's batch statistics on N: the same optimization on a laptop and on 8 GPUs."""
    assert yaml.safe_load(Path("configs/trainer", preset).read_text())["sync_batchnorm"] is True
    with pytest.raises(SystemExit) as exit_info:  # torch syncs batch norm on GPUs only
        main(["fit", "--config=configs/demo.yaml", f"--trainer=configs/trainer/{preset}",
              "--trainer.accelerator=cpu"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "--trainer.sync_batchnorm false" in capsys.readouterr().err


def test_deterministic_runs_give_identical_weights(signal_root: Path, tmp_path: Path) -> None:
    weights = []
    for run in ("a", "b"):
        main(["fit", *FAST, f"--data.root={signal_root}", "--trainer.max_epochs=2",
              "--trainer.deterministic=true", "--data.num_workers=2", "--model.dropout=0.3",
              "--model.num_layers=2", f"--trainer.default_root_dir={tmp_path / run}"])  # fmt: skip
        state = torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)
        weights.append(state["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


@pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU"
)
@pytest.mark.parametrize("preset", ["gpu.yaml", "ddp.yaml"])
def test_a_gpu_preset_without_a_gpu_stops_in_one_line(preset: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config=configs/demo.yaml", f"--trainer=configs/trainer/{preset}",
              f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "torch finds no GPU here" in err and "--trainer.accelerator cpu" in err


def test_trainer_options_lightning_refuses_stop_in_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config=configs/demo.yaml", "--trainer.strategy=fsdp",
              "--trainer.accelerator=cpu", f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: trainer options: The strategy `fsdp` requires a GPU accelerator" in err


@pytest.mark.parametrize(("capability", "slow"), [((7, 5), True), ((8, 0), False), ((9, 0), False)])
def test_a_gpu_without_bf16_units_is_named_for_bf16_mixed(
    capability: tuple[int, int], slow: bool, monkeypatch, tmp_path: Path
) -> None:
    """Before Ampere torch emulates bfloat16: `fit --trainer.precision bf16-mixed` (and
    `extract --precision bf16-mixed`) warn there, with the option to pass instead."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    note = bf16_emulated("cuda")
    assert (note == "Tesla T4 (compute capability 7.5) has no bfloat16 units: torch emulates "
            "bfloat16 there, slower than float32") if slow else note is None  # fmt: skip
    assert bf16_emulated("cpu") is None
    if slow:  # `fit` says so before it starts (here it then stops: no data)
        with (
            pytest.warns(UserWarning, match=r"Tesla T4 .*; pass --trainer.precision 16-mixed"),
            pytest.raises(SystemExit),
        ):
            main(["fit", f"--data.root={tmp_path / 'none'}", "--trainer.precision=bf16-mixed",
                  f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip


def test_auto_trains_on_the_cpu_beside_an_apple_gpu_and_says_why(
    signal_root: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Lightning's `auto` would take mps, where torch's LSTM has given wrong outputs without an
    error: `auto` means a CUDA GPU or the CPU, as for every other command."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    cli = make_cli([f"--data.root={signal_root}", f"--trainer.default_root_dir={tmp_path}"],
                   run=False)  # fmt: skip
    assert cli.config.trainer.accelerator == "cpu"  # chosen before Lightning looks
    assert isinstance(cli.trainer.accelerator, CPUAccelerator)
    assert "Apple GPU (mps) found; training on the CPU" in caplog.text
    assert "--trainer.accelerator mps" in caplog.text
