"""The tool's user error: bad input, options or state, with a message that names the fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class UserError(ValueError):
    """Something the user can fix (a bad file, option or checkpoint): the message names what
    and how. `seqclass` prints it as one ``error:`` line and exits with status 2."""


SequenceDataError = UserError  # its name before it served every command


_RANGES = {  # rule -> (test, how the message says it)
    ">= 0": (lambda v: v >= 0, "0 or more"),
    ">= 1": (lambda v: v >= 1, "1 or more"),
    ">= 2": (lambda v: v >= 2, "2 or more"),
    "> 0": (lambda v: v > 0, "above 0"),
    "[0, 1)": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


def check_ranges(group: str, values: Mapping[str, Any], rules: Mapping[str, str]) -> None:
    """Raise a UserError naming the first option ``--group.name`` of `values` outside its rule
    in `rules` (``>= 0``, ``>= 1``, ``>= 2``, ``> 0`` or ``[0, 1)``); None passes."""
    for name, rule in rules.items():
        value = values[name]
        test, accepted = _RANGES[rule]
        if value is not None and not test(value):
            raise UserError(f"--{group}.{name} is {value}; it must be {accepted}.")
