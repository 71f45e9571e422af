"""Sequence sets (RFC 9051 §9 ``sequence-set``): ``1,3:5,7:*`` and ``$`` (SEARCHRES, RFC 5182).

A :class:`SequenceSet` keeps the ranges as the client wrote them, with ``*`` unresolved; the
application resolves them against the largest number in use (the message count or the highest UID).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_NUMBER = 2**32 - 1  # RFC 9051 §9: nz-number is a 32-bit unsigned integer
STAR = 0  # ``*`` in a range: "the largest number in use" (RFC 9051 §9 seq-number)

_RANGE = re.compile(r"([1-9][0-9]*|\*)(?::([1-9][0-9]*|\*))?")


class SequenceSetError(ValueError):
    """A sequence set that does not follow the grammar."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceSet:
    """Ranges ``(first, last)`` with ``first <= last`` when both are numbers; :data:`STAR` is ``*``."""

    ranges: tuple[tuple[int, int], ...] = ()
    is_saved: bool = False  # ``$``: the result saved by the last SEARCH ... RETURN (SAVE) (RFC 5182 §2.1)

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``text``; raises :class:`SequenceSetError` for 0, empty elements or garbage."""
        if text == "$":
            return cls(is_saved=True)  # RFC 5182 §3: "$" stands alone
        ranges: list[tuple[int, int]] = []
        for element in text.split(","):
            match = _RANGE.fullmatch(element)
            if match is None:
                raise SequenceSetError(f"bad sequence set element {element[:20]!r}")
            first = _number(match.group(1))
            last = first if match.group(2) is None else _number(match.group(2))
            # RFC 9051 §9 seq-range: "2:4" and "4:2" are the same set; keep "*" last
            if first == STAR or (last != STAR and last < first):
                first, last = last, first
            ranges.append((first, last))
        return cls(ranges=tuple(ranges))

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """The set of ``numbers``, compressed to ranges."""
        return cls(ranges=tuple(_runs(sorted(set(numbers)))))

    def intervals(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, non-overlapping ``(first, last)`` intervals with ``*`` = ``largest``.

        RFC 9051 §9: ``*`` is the largest number in use, so ``7:*`` with ``largest`` 5 is ``5:7``.
        Intervals are not clipped to ``largest``: for UIDs a client may name numbers not in use.
        """
        if self.is_saved:
            raise ValueError("resolve '$' to the saved search result first")
        resolved: list[tuple[int, int]] = []
        for first, last in self.ranges:
            low = largest if first == STAR else first
            high = largest if last == STAR else last
            resolved.append((min(low, high), max(low, high)))
        resolved.sort()
        merged: list[tuple[int, int]] = []
        for low, high in resolved:
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return merged

    def contains(self, number: int, *, largest: int) -> bool:
        return any(low <= number <= high for low, high in self.intervals(largest))

    def numbers(self, largest: int) -> Iterator[int]:
        """Each number of the set from 1 to ``largest``, ascending (message sequence numbers)."""
        for low, high in self.intervals(largest):
            yield from range(max(low, 1), min(high, largest) + 1)

    def render(self) -> str:
        if self.is_saved:
            return "$"
        return ",".join(_render_range(first, last) for first, last in self.ranges)

    def __str__(self) -> str:
        return self.render()


def compress(numbers: Iterable[int]) -> str:
    """Numbers as a compact set in the order given: ``1,2,3,7`` → ``1:3,7``.

    The order is kept because COPYUID pairs source and destination UIDs by position (RFC 4315 §3);
    sort first where order does not matter (VANISHED, ESEARCH ALL).
    """
    return ",".join(_render_range(first, last) for first, last in _runs(numbers))


def _runs(numbers: Iterable[int]) -> Iterator[tuple[int, int]]:
    first = last = -1
    for number in numbers:
        if first != -1 and number == last + 1:
            last = number
            continue
        if first != -1:
            yield first, last
        first = last = number
    if first != -1:
        yield first, last


def _number(text: str) -> int:
    if text == "*":
        return STAR
    value = int(text)
    if value > MAX_NUMBER:
        raise SequenceSetError(f"number {text[:20]} out of range")
    return value


def _render_range(first: int, last: int) -> str:
    first_text = "*" if first == STAR else str(first)
    if first == last:
        return first_text
    return f"{first_text}:{'*' if last == STAR else last}"
