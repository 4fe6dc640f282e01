"""The YAML presets of `configs/` (trainers, recipes, signal chains, the tune space), found from
any working directory: an option naming ``configs/trainer/gpu.yaml`` means that file where it
exists, else the preset shipped with the package."""

from __future__ import annotations

from pathlib import Path

# the project's configs/: a link to it in a clone, a copy of it in an installed wheel
PRESETS = Path(__file__).resolve().parents[1] / "configs"
_SUFFIXES = (".yaml", ".yml")


def preset_path(path: str | Path) -> Path:
    """`path` where it exists or names no preset; else the shipped preset that a
    ``configs/...`` path names."""
    path = Path(path)
    if path.exists() or path.parts[:1] != ("configs",):
        return path
    shipped = PRESETS.joinpath(*path.parts[1:])
    return shipped if shipped.is_file() else path


def with_presets(args: list[str]) -> list[str]:
    """Command-line `args` with each YAML value (``--trainer configs/trainer/gpu.yaml`` or
    ``--trainer=configs/...``) that names a shipped preset absent here given as its full path."""
    resolved = []
    for arg in args:
        option, equals, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        if value.endswith(_SUFFIXES) and (shipped := preset_path(value)) != Path(value):
            arg = f"{option}{equals}{shipped}"
        resolved.append(arg)
    return resolved
