"""The lexical layer of the IMAP grammar (RFC 9051 §9, RFC 3501 §9) over one assembled command.

The server core assembles a command with its literals inline (``{n}\\r\\n`` followed by the n
octets), so a :class:`Reader` can read literals like any other token.
"""

from __future__ import annotations

import datetime
import re

from .seqset import SequenceSet, SequenceSetError

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\\]]+")
_ASTRING = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\]+")  # ASTRING-CHAR = ATOM-CHAR / resp-specials
_LIST_CHARS = re.compile(rb"[^\x00-\x20\x7f-\xff(){\"\\]+")  # list-char adds list-wildcards "%" / "*"
_TAG = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\+]+")  # RFC 9051 §9 tag: 1*<any ASTRING-CHAR except "+">
_NUMBER = re.compile(rb"[0-9]+")
_LITERAL = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\r\n")
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE = re.compile(rb'\\(["\\])')
_SEQUENCE = re.compile(rb"[0-9:*,$]+")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

MAX_NUMBER = 2**32 - 1  # RFC 9051 §9 number
MAX_NUMBER64 = 2**63 - 1  # RFC 9051 §9 number64 (mod-sequence values, RFC 7162 §7)


class ParseError(Exception):
    """The command does not follow the grammar; ``reason`` is for a human."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reader:
    """A cursor over one command; every method consumes a token or raises :class:`ParseError`."""

    __slots__ = ("data", "position")

    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    # ---- structure ------------------------------------------------------------------------------

    def is_at_end(self) -> bool:
        return self.position >= len(self.data)

    def peek(self) -> bytes:
        return self.data[self.position : self.position + 1]

    def accept(self, text: bytes) -> bool:
        """Consume ``text`` (letters case-insensitively) if it comes next."""
        end = self.position + len(text)
        if self.data[self.position : end].upper() == text.upper():
            self.position = end
            return True
        return False

    def expect(self, text: bytes, what: str | None = None) -> None:
        if not self.accept(text):
            raise ParseError(f"expected {what or text.decode()!s}")

    def space(self) -> None:
        self.expect(b" ", "a space")

    def end(self) -> None:
        if not self.is_at_end():
            raise ParseError(f"unexpected {self.data[self.position : self.position + 20]!r}")

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        match = pattern.match(self.data, self.position)
        if match is None:
            raise ParseError(f"expected {what}")
        self.position = match.end()
        return match.group()

    # ---- tokens ---------------------------------------------------------------------------------

    def tag(self) -> str:
        return self._match(_TAG, "a tag").decode("ascii")

    def atom(self, what: str = "an atom") -> str:
        return self._match(_ATOM, what).decode("ascii")

    def number(self, *, limit: int = MAX_NUMBER) -> int:
        value = int(self._match(_NUMBER, "a number"))
        if value > limit:
            raise ParseError("number out of range")
        return value

    def nz_number(self, *, limit: int = MAX_NUMBER) -> int:
        value = self.number(limit=limit)
        if value == 0:
            raise ParseError("zero is not allowed here")
        return value

    def quoted(self) -> bytes:
        return _UNESCAPE.sub(rb"\1", self._match(_QUOTED, "a quoted string")[1:-1])

    def literal(self, *, is_binary_allowed: bool = False) -> bytes:
        match = _LITERAL.match(self.data, self.position)
        if match is None:
            raise ParseError("expected a literal")
        if match.group(1) and not is_binary_allowed:
            raise ParseError("literal8 is not allowed here")  # RFC 3516 §4.4: only in APPEND
        size = int(match.group(2))
        start = match.end()
        if start + size > len(self.data):
            raise ParseError("truncated literal")
        self.position = start + size
        value = self.data[start : self.position]
        if not match.group(1) and b"\x00" in value:
            raise ParseError("NUL in a literal")  # RFC 9051 §4.3: only literal8 may hold NUL
        return value

    def string(self) -> bytes:
        head = self.peek()
        if head == b'"':
            return self.quoted()
        if head == b"{" or self.data.startswith(b"~{", self.position):
            return self.literal()
        raise ParseError("expected a string")

    def _is_string_next(self) -> bool:
        return self.peek() in (b'"', b"{") or self.data.startswith(b"~{", self.position)

    def astring(self, what: str = "an astring") -> bytes:
        if self._is_string_next():
            return self.string()
        return self._match(_ASTRING, what)

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def list_mailbox(self) -> bytes:
        if self._is_string_next():
            return self.string()
        return self._match(_LIST_CHARS, "a mailbox pattern")

    def sequence_set(self) -> SequenceSet:
        text = self._match(_SEQUENCE, "a sequence set").decode("ascii")
        try:
            return SequenceSet.parse(text)
        except SequenceSetError as exc:
            raise ParseError(str(exc)) from None

    def date(self) -> datetime.date:
        """RFC 9051 §9 date: ``1-Feb-1994``, optionally in double quotes."""
        is_quoted = self.accept(b'"')
        match = _DATE.match(self.data, self.position)
        if match is None:
            raise ParseError("expected a date like 1-Feb-1994")
        self.position = match.end()
        if is_quoted:
            self.expect(b'"', "a closing quote")
        try:
            return datetime.date(int(match.group(3)), _month(match.group(2)), int(match.group(1)))
        except ValueError:
            raise ParseError("no such date") from None

    def date_time(self) -> datetime.datetime:
        """RFC 9051 §9 date-time: ``"17-Jul-1996 02:44:25 -0700"``, as an aware datetime."""
        match = _DATE_TIME.match(self.data, self.position)
        if match is None:
            raise ParseError('expected a date-time like "17-Jul-1996 02:44:25 -0700"')
        self.position = match.end()
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
        offset = datetime.timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        try:
            return datetime.datetime(
                int(year),
                _month(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=datetime.timezone(-offset if sign == b"-" else offset),
            )
        except ValueError:
            raise ParseError("no such date-time") from None

    def parenthesised(self) -> bool:
        """Consume ``(`` if it comes next."""
        return self.accept(b"(")

    def list_of(self, item: str = "astring") -> list[bytes]:
        """``"(" [x *(SP x)] ")"`` of astrings or atoms."""
        self.expect(b"(")
        values: list[bytes] = []
        while not self.accept(b")"):
            if values:
                self.space()
            values.append(self.astring() if item == "astring" else self.atom().encode())
        return values


def _month(text: bytes) -> int:
    try:
        return _MONTHS.index(text.decode("ascii").upper()) + 1
    except ValueError:
        raise ParseError("no such month") from None
