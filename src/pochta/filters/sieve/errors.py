"""The one error a Sieve script can cause: where it is and what is wrong."""

from __future__ import annotations


class SieveError(Exception):
    """A script error at ``line``:``column`` (1-based); ``str()`` is ``line L:C: message``."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message
