"""The command table: each command module imports on its own, and LightningCLI needs none."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from feature_extractors.signal.methods import DECOMPOSITIONS
from pipeline.cli import command_parser, main
from pipeline.commands import COMMANDS

IMPORT_EACH_ALONE = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("pipeline", "feature_extractors")]:
        del sys.modules[loaded]
    importlib.import_module(name)
    if name == "pipeline.training.lightning_cli":
        pulled = sorted(m for m in sys.modules if m.startswith("pipeline.commands."))
        assert not pulled, f"pipeline.training.lightning_cli imports command modules: {pulled}"
"""


def test_every_command_module_imports_alone_without_a_circle() -> None:
    modules = ["pipeline.training.lightning_cli", "pipeline.training.cross_validation", "pipeline.training.tuning",
               *(f"pipeline.commands.{name.replace('-', '_')}" for name in COMMANDS)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, *modules], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_help_lists_every_command_with_its_line(capsys) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    for name, line in COMMANDS.items():
        assert f"  {name} " in out and line in out
    for name in ("fit", "validate", "test", "predict"):
        assert f"  {name} " in out


def test_the_overview_and_every_commands_help_answer_without_loading_torch() -> None:
    """`--help` is the first thing a new user runs: it must not wait seconds for torch,
    torchvision or Lightning (torch loads once the options are parsed)."""
    helps = """
import sys
from pipeline.cli import command_parser, main
for args in [["--help"], *([name, "--help"] for name in sys.argv[1:])]:
    try:
        main(args)
    except SystemExit:  # argparse's, after a command's help
        pass
print(sorted(sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", helps, *COMMANDS], capture_output=True, text=True)
    loaded = done.stdout.splitlines()[-1] if done.returncode == 0 else done.stderr[-2000:]
    assert "'pipeline.commands.tune'" in loaded and "'torch'" not in loaded, loaded
    # decompose's methods are checked once parsed; its help names each of them
    (method,) = [s for s in done.stdout.splitlines() if s.lstrip().startswith("--method METHOD")]
    named = set(re.findall(r"\w+", method.split("METHOD")[1])) - {"default", "or"}
    assert named == set(DECOMPOSITIONS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_of_every_command_says_what_it_is(name: str) -> None:
    options = [a for a in command_parser(name)._actions if a.dest != "help"]
    assert options and all(a.help for a in options), [a.dest for a in options if not a.help]


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["extract", "videos", "--out"], "folder"),
        (["decompose", "a.wav", "--out"], "folder"),
        (["explain", "a.npy", "--checkpoint", "m.ckpt", "--out"], "folder"),
        (["cv", "--out"], "folder"),
        (["tune", "--out"], "folder"),
        (["baseline", "--out"], "folder"),
        (["sample-data", "signals"], "folder"),
        (["classify", "a.npy", "--checkpoint", "m.ckpt", "--out"], "file"),
        (["export", "--checkpoint", "m.ckpt", "--out"], "file"),
    ],
)
def test_an_output_of_the_wrong_kind_is_refused_before_any_work(
    tmp_path: Path, capsys, args: list[str], wanted: str
) -> None:
    """A folder where a file is written, or a file where a folder is, stops with one line."""
    wrong = tmp_path / "here"
    wrong.mkdir() if wanted == "file" else wrong.touch()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, str(wrong)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{wrong} is a {'folder' if wanted == 'file' else 'file'}; give a" in err
