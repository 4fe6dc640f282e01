"""`seqclass`: LightningCLI's fit, validate, test and predict, plus the data commands of
`pipeline.commands`, each parsed by its own module."""

from __future__ import annotations

import argparse
import sys

from feature_extractors.errors import WeightsUnavailableError
from pipeline.commands import COMMANDS, load
from pipeline.core.errors import UserError
from pipeline.core.noise import hide_noisy_logs, hide_noisy_warnings
from pipeline.core.presets import with_presets

LIGHTNING_COMMANDS = {
    "fit": "train a model (`seqclass fit --data.root ROOT` is enough)",
    "validate": "score a checkpoint on the val split",
    "test": "score a checkpoint on the test split: metrics.json, figures, report.md",
    "predict": "class probabilities of the test split or of --data.predict_root, as CSV",
}


def overview() -> str:
    """`seqclass --help`: every command with one line."""
    width = max(map(len, [*COMMANDS, *LIGHTNING_COMMANDS])) + 2
    lines = ["usage: seqclass COMMAND [options]   (`seqclass COMMAND -h` for its options)", ""]
    for title, table in (("training", LIGHTNING_COMMANDS), ("data and results", COMMANDS)):
        lines += [f"{title}:", *(f"  {name:<{width}}{text}" for name, text in table.items()), ""]
    return "\n".join(lines)


def command_parser(name: str) -> argparse.ArgumentParser:
    """Command `name`'s own parser."""
    module = load(name)
    parser = argparse.ArgumentParser(prog=f"seqclass {name}", description=module.__doc__)
    module.add_arguments(parser)
    return parser


def run_command(name: str, args: list[str]) -> None:
    """Parse `args` with command `name`'s own parser and run it."""
    module, parser = load(name), command_parser(name)
    if getattr(module, "FIT_OPTIONS", False):
        ns, ns.fit_args = parser.parse_known_args(args)
    else:
        ns = parser.parse_args(args)
    module.run(ns)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `seqclass` command."""
    hide_noisy_warnings()
    hide_noisy_logs()
    args = with_presets(sys.argv[1:] if argv is None else list(argv))
    if argv is None:  # what LightningCLI reads, and the processes DDP launches run again
        sys.argv[1:] = args
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        return
    try:
        if args[0] in COMMANDS:
            run_command(args[0], args[1:])
        else:
            from pipeline.training.lightning_cli import make_cli

            # LightningCLI reads the command line itself (as do the processes DDP launches)
            data_commands = ", ".join(f"`seqclass {name} -h`" for name in COMMANDS)
            make_cli(
                None if argv is None else args,
                description=f"Train and evaluate sequence classifiers. Data commands: {data_commands}.",
            )
        if "torch.distributed" in sys.modules:  # under DDP: every rank done before any exits
            from pipeline.core.distributed import leave_process_group

            leave_process_group()
    except (UserError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
