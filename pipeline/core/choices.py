"""Options chosen by name from a table: the accepted names are the table's keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def choose(table: Mapping[str, T], name: str, option: str) -> T:
    """`table[name]`, or a ValueError naming `option` and the names it accepts."""
    if name in table:
        return table[name]
    *others, last = table
    accepted = f"{', '.join(others)} or {last}" if others else last
    raise ValueError(f"unknown {option} {name!r}; choose {accepted}")
