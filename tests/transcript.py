"""Transcript checks in the style of CONVENTIONS.md, for every line-based session's harness."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Protocol


class LineClient(Protocol):
    async def send(self, data: bytes) -> None: ...
    async def line(self) -> str: ...


async def play(client: LineClient, text: str, *, shown: Callable[[str], str] = lambda line: line) -> None:
    """`C:` lines are sent, `S:` lines must come back exactly (a trailing `*` matches any rest of the
    line); ``shown`` turns a received line into how the transcript writes it."""
    for raw in textwrap.dedent(text).strip().splitlines():
        kind, _, rest = raw.strip().partition(" ")
        if not kind:
            continue
        if kind == "C:":
            await client.send(rest.encode() + b"\r\n")
        elif kind == "S:":
            got = shown(await client.line())
            if rest.endswith("*"):
                assert got.startswith(rest[:-1]), f"expected {rest!r}, got {got!r}"
            else:
                assert got == rest, f"expected {rest!r}, got {got!r}"
        else:
            raise ValueError(f"transcript line must start with C: or S: ({raw!r})")
