"""The command table: each command module imports on its own, and LightningCLI needs none."""

from __future__ import annotations

import subprocess
import sys

from pipeline.cli import main
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


def test_the_overview_and_the_light_commands_start_without_torch() -> None:
    """`seqclass --help` is the first thing a new user runs: it must not wait for torch."""
    light = """
import sys
from pipeline.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # argparse's, after a command's help
    pass
print(sorted(sys.modules))
"""
    for args in (["--help"], ["sample-data", "--help"]):
        done = subprocess.run([sys.executable, "-c", light, *args], capture_output=True, text=True)
        loaded = done.stdout.splitlines()[-1] if done.returncode == 0 else done.stderr[-2000:]
        assert "'pipeline.cli'" in loaded and "'torch'" not in loaded, loaded
