"""Sieve's lexical layer (RFC 5228 §8.1): source text into tokens that know their line and column."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import NamedTuple

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


class Token(NamedTuple):  # a tuple: made once per token, so cheap to make
    kind: Kind
    text: str  # identifier/tag lowercase without ':', string contents, the special character
    line: int
    column: int
    number: int = 0


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"([0-9]+)([KkMmGg]?)")
_MULTILINE_START = re.compile(r"text:[ \t]*(?:#[^\n]*)?\r?\n")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# One pass over the common tokens; anything it does not match is an error, explained below.
_TOKEN = re.compile(
    r"""
      (?P<space>[ \t\r\n]+)
    | (?P<hash>\#[^\n]*)
    | (?P<bracket>/\*.*?\*/)
    | (?P<special>[\[\](){},;])
    | (?P<quoted>"(?:[^"\\]|\\.)*")
    | (?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[0-9]+[KkMmGg]?)(?![A-Za-z0-9_])
    | (?P<multiline>text:[ \t]*(?:\#[^\n]*)?\r?\n)
    | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(source: str) -> Iterator[Token]:
    """The tokens of ``source``; a lexical error raises :class:`SieveError` at its position."""
    pos = 0
    line = 1
    line_start = 0
    length = len(source)
    match_token = _TOKEN.match
    while pos < length:
        match = match_token(source, pos)
        if match is None:
            raise _lexical_error(source, pos, line, pos - line_start + 1)
        kind = match.lastgroup
        text = match.group()
        column = pos - line_start + 1
        end = match.end()
        if kind == "special":
            yield Token(Kind.SPECIAL, text, line, column)
        elif kind == "identifier":
            yield Token(Kind.IDENTIFIER, text.lower(), line, column)
        elif kind == "tag":
            yield Token(Kind.TAG, text[1:].lower(), line, column)
        elif kind == "quoted":
            # RFC 5228 §2.4.2: \" and \\ are escapes; any other backslash is dropped (\a is a)
            inner = text[1:-1]
            yield Token(Kind.STRING, _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner, line, column)
        elif kind == "number":
            value = _number(text, line, column)
            yield Token(Kind.NUMBER, text, line, column, value)
        elif kind == "multiline":
            content, end = _multiline(source, end, line, column)
            yield Token(Kind.STRING, content, line, column)
        newlines = source.count("\n", pos, end) if kind in ("space", "bracket", "quoted", "multiline") else 0
        if newlines:
            line += newlines
            line_start = source.rindex("\n", pos, end) + 1
        pos = end
    yield Token(Kind.END, "", line, pos - line_start + 1)


def _number(text: str, line: int, column: int) -> int:
    number_match = _NUMBER.fullmatch(text)
    assert number_match is not None
    value = int(number_match.group(1)) * _QUANTIFIERS.get(number_match.group(2).lower(), 1)
    if value > MAX_NUMBER:
        raise SieveError(line, column, f"number {text} is too large")
    return value


def _lexical_error(source: str, pos: int, line: int, column: int) -> SieveError:
    char = source[pos]
    if source.startswith("/*", pos):
        return SieveError(line, column, "unterminated comment")
    if char == '"':
        return SieveError(line, column, "unterminated string")
    if char == ":":
        return SieveError(line, column, "':' must start a tagged argument like :is")
    if "0" <= char <= "9":
        number = _NUMBER.match(source, pos)
        assert number is not None
        after = number.end()
        return SieveError(line, column + after - pos, f"unexpected {source[after]!r} after a number")
    return SieveError(line, column, f"unexpected character {char!r}")


def _multiline(source: str, pos: int, line: int, column: int) -> tuple[str, int]:
    """RFC 5228 §2.4.2: lines up to a line holding only '.'; a leading '..' stands for '.'. Each line
    ends in CRLF, as the grammar says, also where the script file has bare LFs."""
    out: list[str] = []
    index = pos
    length = len(source)
    while index < length:
        end = source.find("\n", index)
        next_index = length if end < 0 else end + 1
        text = source[index:next_index]
        if text.rstrip("\r\n") == ".":
            return "".join(out), next_index
        text = text[1:] if text.startswith("..") else text
        out.append(text[:-2] + "\r\n" if text.endswith("\r\n") else text[:-1] + "\r\n" if text.endswith("\n") else text)
        index = next_index
    raise SieveError(line, column, "unterminated multi-line string: a line with only '.' must end it")
