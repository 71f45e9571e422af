"""Command lines out of a byte buffer, shared by the line-based cores (SMTP, POP3).

A line longer than the limit is answered once as too long and then skipped up to its line ending, so
its tail is never read as a command (RFC 5321 §4.5.3.1.4; the same rule serves POP3).
"""

from __future__ import annotations

import enum


class TooLong(enum.Enum):
    LINE = enum.auto()


def take_line(buffer: bytearray, *, limit: int, is_discarding: bool) -> tuple[bytes | TooLong | None, bool]:
    """The next line without its ending (None when no whole line is buffered, TooLong.LINE for an
    over-long one), and whether the rest of an over-long line is still being skipped.

    CRLF ends a line; a bare LF is tolerated for commands (never for message content)."""
    newline = buffer.find(b"\n")
    if is_discarding:
        if newline == -1:
            buffer.clear()
            return None, True
        del buffer[: newline + 1]
        return TooLong.LINE, False
    if newline == -1:
        if len(buffer) >= limit:
            buffer.clear()
            return None, True
        return None, False
    line = bytes(buffer[:newline])
    del buffer[: newline + 1]
    if newline + 1 > limit:
        return TooLong.LINE, False
    return (line[:-1] if line.endswith(b"\r") else line), False
