"""A small reader of IMAP s-expressions, to check that rendered FETCH items are well formed."""

from __future__ import annotations

import re

_ATOM = re.compile(rb"[^\x00-\x20\x7f()\"{}\\]+")
_NUMBER = re.compile(rb"\d+")

Value = bytes | None | int | list["Value"]


def read(data: bytes) -> Value:
    """One parenthesised list (or string/NIL/number) that must span all of ``data``."""
    value, pos = _read(data, 0)
    if pos != len(data):
        raise ValueError(f"trailing octets at {pos}: {data[pos : pos + 20]!r}")
    return value


def _read(data: bytes, pos: int) -> tuple[Value, int]:
    if pos >= len(data):
        raise ValueError("unexpected end")
    char = data[pos : pos + 1]
    if char == b"(":
        items: list[Value] = []
        pos += 1
        while True:
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            if items and data[pos : pos + 1] == b" ":
                pos += 1
            item, pos = _read(data, pos)
            items.append(item)
    if char == b'"':
        out = bytearray()
        pos += 1
        while True:
            if pos >= len(data):
                raise ValueError("unterminated quoted string")
            octet = data[pos : pos + 1]
            if octet in (b"\r", b"\n", b"\x00") or data[pos] > 0x7F:
                raise ValueError(f"{octet!r} in a quoted string")
            if octet == b"\\":
                if data[pos + 1 : pos + 2] not in (b'"', b"\\"):
                    raise ValueError("bad escape")
                out += data[pos + 1 : pos + 2]
                pos += 2
                continue
            if octet == b'"':
                return bytes(out), pos + 1
            out += octet
            pos += 1
    if char == b"{":
        match = re.compile(rb"\{(\d+)\}\r\n").match(data, pos)
        if match is None:
            raise ValueError("bad literal")
        start = match.end()
        end = start + int(match.group(1))
        if end > len(data):
            raise ValueError("literal runs past the end")
        if b"\x00" in data[start:end]:
            raise ValueError("NUL in a literal")
        return data[start:end], end
    number = _NUMBER.match(data, pos)
    if number is not None and data[number.end() : number.end() + 1] in (b" ", b")", b""):
        return int(number.group(0)), number.end()
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    raise ValueError(f"unexpected {data[pos : pos + 20]!r} at {pos}")
