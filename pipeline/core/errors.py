"""The tool's user error: bad input, options or state, with a message that names the fix."""

from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix (a bad file, option or checkpoint): the message names what
    and how. `seqclass` prints it as one ``error:`` line and exits with status 2."""


SequenceDataError = UserError  # its name before it served every command
