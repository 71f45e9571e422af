"""Comparators (RFC 4790 via RFC 5228 §2.7.3) and match types: :is :contains :matches (RFC 5228 §2.7.1),
:regex (draft-ietf-sieve-regex), :value and :count (RFC 5231)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from pochta.filters.sieve.errors import SieveError

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_DIGITS = re.compile(r"[0-9]*")
REGEX_TIMEOUT = 0.5  # seconds one :regex match may take (a run-time error then: the message is kept)
_INFINITY = float("inf")
_POSIX_CLASSES = {  # inside a bracket expression: [[:digit:]] is [0-9]
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:alnum:]": "a-zA-Z0-9",
    "[:space:]": r" \t\r\n\v\f",
    "[:blank:]": r" \t",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:punct:]": r"!-/:-@\[-`{-~",
    "[:cntrl:]": r"\x00-\x1f\x7f",
    "[:print:]": r"\x20-\x7e",
    "[:graph:]": r"\x21-\x7e",
}


@dataclass(frozen=True, slots=True)
class MatchType:
    kind: str  # is, contains, matches, regex, value, count
    operator: str = ""  # for value and count: gt ge lt le eq ne
    comparator: str = "i;ascii-casemap"


def fold(text: str, comparator: str) -> str:
    return text.translate(_ASCII_LOWER) if comparator == "i;ascii-casemap" else text


def _numeric(text: str) -> float:
    """RFC 4790 §9.1.1: the leading digits as a number; a string that starts with none is positive infinity."""
    digits = _DIGITS.match(text)
    assert digits is not None
    return int(digits.group(0)) if digits.group(0) else _INFINITY


def _compare(value: str, key: str, operator: str, comparator: str) -> bool:
    left: float | str
    right: float | str
    if comparator == "i;ascii-numeric":
        left, right = _numeric(value), _numeric(key)
    else:
        left, right = fold(value, comparator), fold(key, comparator)
    if operator == "eq":
        return left == right
    if operator == "ne":
        return left != right
    if operator == "gt":
        return left > right  # type: ignore[operator]
    if operator == "ge":
        return left >= right  # type: ignore[operator]
    if operator == "lt":
        return left < right  # type: ignore[operator]
    return left <= right  # type: ignore[operator]


@functools.lru_cache(maxsize=256)
def _glob(pattern: bytes) -> re.Pattern[bytes]:
    """A :matches pattern as a regex over octets: i;octet and i;ascii-casemap compare octets (RFC 4790
    §9.2-9.3), so ? is one octet, as in Dovecot. * and ? capture, shortest first (RFC 5229 §3.2)."""
    out: list[bytes] = []
    index = 0
    while index < len(pattern):
        char = pattern[index : index + 1]
        if char == b"\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1 : index + 2]))
            index += 2
            continue
        if char == b"*":
            out.append(b"(.*?)")
        elif char == b"?":
            out.append(b"(.)")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile(b"".join(out), re.DOTALL)


def _captured(octets: bytes, found: re.Match[bytes]) -> list[str]:
    return [octets.decode("utf-8", "replace")] + [
        octets[found.start(group) : found.end(group)].decode("utf-8", "replace")
        for group in range(1, found.re.groups + 1)
    ]


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str, is_caseless: bool) -> regex.Pattern[str]:
    """A POSIX extended regular expression in the `regex` module's syntax (the common subset is the same).
    `regex` rather than `re` because a match can be given a time limit: a user's pattern that backtracks
    catastrophically must not stall delivery (re holds the GIL with no way out)."""
    flags = regex.IGNORECASE if is_caseless else 0
    for posix, python in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, python)
    return regex.compile(pattern, flags | regex.VERSION0)


def match(values: Sequence[str], keys: Sequence[str], how: MatchType) -> tuple[bool, list[str] | None]:
    """Whether any value matches any key; for :matches and :regex also the match variables
    (${0} the whole match, then each wildcard or group) of the first match."""
    comparator = how.comparator
    if how.kind == "count":
        count = str(len(values))
        return any(_compare(count, key, how.operator, "i;ascii-numeric") for key in keys), None
    for value in values:
        for key in keys:
            if how.kind == "is":
                if _compare(value, key, "eq", comparator):
                    return True, None
            elif how.kind == "value":
                if _compare(value, key, how.operator, comparator):
                    return True, None
            elif how.kind == "contains":
                if fold(key, comparator) in fold(value, comparator):
                    return True, None
            elif how.kind == "matches":
                octets = value.encode("utf-8", "surrogateescape")
                found = _glob(fold(key, comparator).encode("utf-8", "surrogateescape")).fullmatch(
                    fold(value, comparator).encode("utf-8", "surrogateescape")
                )
                if found is not None:
                    return True, _captured(octets, found)
            else:
                try:
                    pattern = compile_regex(key, comparator == "i;ascii-casemap")
                except (regex.error, OverflowError, RecursionError) as error:
                    raise SieveError(0, 0, f'invalid regular expression "{key}": {error}') from None
                try:
                    searched = pattern.search(value, timeout=REGEX_TIMEOUT)
                except TimeoutError:
                    raise SieveError(0, 0, f'regular expression "{key}" took too long') from None
                if searched is not None:
                    return True, [searched.group(0)] + [group or "" for group in searched.groups()]
    return False, None
