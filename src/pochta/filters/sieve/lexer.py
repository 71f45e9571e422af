"""Sieve's lexical layer (RFC 5228 §8.1): source text into tokens that know their line and column."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pochta.filters.sieve.errors import SieveError

MAX_NUMBER = 2**63 - 1  # RFC 5228 §2.4.1 asks for at least 2**31; bigger numbers are an error, not a wrap
_QUANTIFIERS = {"k": 2**10, "m": 2**20, "g": 2**30}  # RFC 5228 §2.4.1


class Kind(enum.Enum):
    IDENTIFIER = enum.auto()
    TAG = enum.auto()
    NUMBER = enum.auto()
    STRING = enum.auto()  # quoted or multi-line, already unescaped
    SPECIAL = enum.auto()  # one of [ ] ( ) { } , ;
    END = enum.auto()


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # identifier/tag lowercase without ':', string contents, the special character
    line: int
    column: int
    number: int = 0


_WHITESPACE = re.compile(r"[ \t\r\n]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"([0-9]+)([KkMmGg]?)")
_MULTILINE_START = re.compile(r"text:[ \t]*(?:#[^\n]*)?\r?\n")
_SPECIALS = frozenset("[](){},;")


def tokens(source: str) -> Iterator[Token]:
    """The tokens of ``source``; a lexical error raises :class:`SieveError` at its position."""
    pos = 0
    line = 1
    line_start = 0
    length = len(source)

    def here(at: int) -> tuple[int, int]:
        return line, at - line_start + 1

    def advance_lines(start: int, end: int) -> None:
        nonlocal line, line_start
        newlines = source.count("\n", start, end)
        if newlines:
            line += newlines
            line_start = source.rindex("\n", start, end) + 1

    while True:
        # whitespace and comments
        while pos < length:
            match = _WHITESPACE.match(source, pos)
            if match is not None:
                advance_lines(pos, match.end())
                pos = match.end()
                continue
            if source.startswith("#", pos):
                end = source.find("\n", pos)
                pos = length if end < 0 else end
                continue
            if source.startswith("/*", pos):
                end = source.find("*/", pos + 2)
                if end < 0:
                    raise SieveError(*here(pos), "unterminated comment")
                advance_lines(pos, end)
                pos = end + 2
                continue
            break
        if pos >= length:
            yield Token(Kind.END, "", *here(pos))
            return
        char = source[pos]
        start_line, start_column = here(pos)
        if char in _SPECIALS:
            yield Token(Kind.SPECIAL, char, start_line, start_column)
            pos += 1
        elif char == '"':
            text, end = _quoted(source, pos, start_line, start_column)
            advance_lines(pos, end)
            pos = end
            yield Token(Kind.STRING, text, start_line, start_column)
        elif char == ":":
            match = _IDENTIFIER.match(source, pos + 1)
            if match is None:
                raise SieveError(start_line, start_column, "':' must start a tagged argument like :is")
            pos = match.end()
            yield Token(Kind.TAG, match.group(0).lower(), start_line, start_column)
        elif "0" <= char <= "9":
            number_match = _NUMBER.match(source, pos)
            assert number_match is not None
            value = int(number_match.group(1)) * _QUANTIFIERS.get(number_match.group(2).lower(), 1)
            if value > MAX_NUMBER:
                raise SieveError(start_line, start_column, f"number {number_match.group(0)} is too large")
            pos = number_match.end()
            if pos < length and (source[pos].isalnum() or source[pos] == "_"):
                raise SieveError(*here(pos), f"unexpected {source[pos]!r} after a number")
            yield Token(Kind.NUMBER, number_match.group(0), start_line, start_column, value)
        elif source.startswith("text:", pos) and (multi := _MULTILINE_START.match(source, pos)):
            text, end = _multiline(source, multi.end(), start_line, start_column)
            advance_lines(pos, end)
            pos = end
            yield Token(Kind.STRING, text, start_line, start_column)
        else:
            match = _IDENTIFIER.match(source, pos)
            if match is None:
                raise SieveError(start_line, start_column, f"unexpected character {char!r}")
            pos = match.end()
            yield Token(Kind.IDENTIFIER, match.group(0).lower(), start_line, start_column)


def _quoted(source: str, pos: int, line: int, column: int) -> tuple[str, int]:
    """RFC 5228 §2.4.2: \\" and \\\\ are escapes; any other backslash is dropped (\\a is a)."""
    out: list[str] = []
    index = pos + 1
    length = len(source)
    while index < length:
        char = source[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\" and index + 1 < length:
            out.append(source[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    raise SieveError(line, column, "unterminated string")


def _multiline(source: str, pos: int, line: int, column: int) -> tuple[str, int]:
    """RFC 5228 §2.4.2: lines up to a line holding only '.'; a leading '..' stands for '.'."""
    out: list[str] = []
    index = pos
    length = len(source)
    while index < length:
        end = source.find("\n", index)
        next_index = length if end < 0 else end + 1
        text = source[index:next_index]
        if text.rstrip("\r\n") == ".":
            return "".join(out), next_index
        out.append(text[1:] if text.startswith("..") else text)
        index = next_index
    raise SieveError(line, column, "unterminated multi-line string: a line with only '.' must end it")
