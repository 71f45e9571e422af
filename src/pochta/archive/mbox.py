"""mbox files, read and written a line at a time (a 2 GB mbox never sits in memory).

Writing (what `pochta export --format mbox` makes) is mboxrd: every line of the message that matches
``>*From `` gets one more ``>``, so reading removes exactly one and gets the octets back. Right after the
``From `` line come four headers that carry what the octets cannot (mutt, Dovecot and Python's `mailbox`
read them): ``Status:`` (R: \\Seen; O: not new), ``X-Status:`` (A \\Answered, F \\Flagged, T \\Draft,
D \\Deleted), ``X-Keywords:`` and ``Content-Length:`` (octets of the body as written, so a message that
does not end in a newline comes back exactly). A message with no header/body separator, or whose header
is empty, is written whole after those four headers and a blank line, with Content-Length covering all of it.

Reading takes those headers off again: a run of them at the very top (each name once, so a header of the
same name that the message itself starts with is kept), or else, as mutt and Dovecot write them, a run
at the end of the header block (also X-UID, X-IMAPbase). A valid Content-Length (pointing at a ``From ``
line or the end of the file) gives the body's extent; otherwise the body ends at a ``From `` line after
a blank line (mboxo and mboxrd both), and that blank line is the separator, not the message's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from pochta.archive.flags import flags_from_status, status_headers

LINE_CHUNK = 64 * 1024  # longest piece of a line handled at once; longer lines pass through in pieces
MAX_HEADER = 1024 * 1024  # a header block longer than this is not a message we can take apart
_BLANK = (b"\n", b"\r\n")
_QUOTED = re.compile(rb">*From ")
_LEADING = ("status", "x-status", "x-keywords", "content-length")  # what we write, in this order
_TRAILING = frozenset({"status", "x-status", "x-keywords", "x-uid", "x-imapbase", "content-length"})
_FROM_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2})"
    rb" +(\d{1,2}):(\d{2})(?::(\d{2}))?(?: +(?:[A-Z]{1,5}|[+-]\d{4}))? +(\d{4})"
)
_MONTHS = {m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One message read: where it was in the file and what its mbox headers said."""

    start: int  # offset of its From line
    end: int  # offset of the next message (or the end of the file)
    flags: frozenset[str]
    internal_date: datetime | None  # from the From line
    date_header: bytes | None  # the Date: header, for when the From line has no date
    is_folder_data: bool = False  # UW-IMAP's and Dovecot's "DON'T DELETE THIS MESSAGE" (X-IMAP:)


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    """Octets that are not a message we can read, and why."""

    start: int
    end: int
    reason: str


def parse_from_line(line: bytes) -> datetime | None:
    """The date of a ``From sender date`` line (asctime, as in UTC), or None."""
    match = _FROM_DATE.search(line)
    if match is None:
        return None
    month, day, hour, minute, second, year = match.groups()
    try:
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC)
    except ValueError:
        return None


def _unquote(chunk: bytes) -> bytes:
    return chunk[1:] if chunk[:1] == b">" and _QUOTED.match(chunk) else chunk


def _header_name(line: bytes) -> str | None:
    name, colon, _ = line.partition(b":")
    if not colon or not name or name != name.strip() or b" " in name:
        return None
    return name.decode("latin-1").lower()


class Reader:
    """Messages of one mbox file, from `start` (a message boundary) on."""

    def __init__(self, handle: BinaryIO, *, start: int = 0) -> None:
        self._handle = handle
        self._size = handle.seek(0, os.SEEK_END)
        handle.seek(start)
        self._pushed: tuple[bytes, bool, int] | None = None
        self._at_start = True

    def tell(self) -> int:
        return self._pushed[2] if self._pushed is not None else self._handle.tell()

    def _read(self, limit: int = LINE_CHUNK) -> tuple[bytes, bool]:
        """The next line, or its next piece when longer than `limit`; and whether it begins a line."""
        if self._pushed is not None:
            data, at_start, _ = self._pushed
            self._pushed = None
            return data, at_start
        data = self._handle.readline(limit)
        at_start = self._at_start
        if data:
            self._at_start = data.endswith(b"\n")
        return data, at_start

    def _push(self, data: bytes, at_start: bool) -> None:
        self._pushed = (data, at_start, self._handle.tell() - len(data))

    def _line(self, cap: int) -> bytes | None:
        """A whole line (None past `cap` octets; the rest of it is then left unread)."""
        data, _ = self._read()
        while data and not data.endswith(b"\n"):
            if len(data) > cap:
                return None
            more, _ = self._read()
            if not more:
                break
            data += more
        return data

    def next(self, write: Callable[[bytes], None]) -> Entry | Skip | None:
        """Read the next message, passing its octets to `write`; None at the end of the file."""
        start = self.tell()
        first, at_start = self._read()
        if not first:
            return None
        if not (at_start and first.startswith(b"From ")):
            self._skip_to_from()
            return Skip(start=start, end=self.tell(), reason="text that is not a message (no From line before it)")
        while not first.endswith(b"\n"):  # an absurdly long From line: only its start matters
            more, _ = self._read()
            if not more:
                break
        date = parse_from_line(first[:200])
        header: list[bytes] = []
        size = 0
        while True:
            line = self._line(MAX_HEADER)
            if line is None or size > MAX_HEADER:
                self._skip_to_from()
                return Skip(start=start, end=self.tell(), reason=f"header block over {MAX_HEADER} octets")
            if not line:
                break
            header.append(_unquote(line))
            size += len(line)
            if line in _BLANK:
                break
        meta, keep, is_leading = _metadata(header)
        first_kept = keep[0] if keep else len(header)
        if is_leading and (first_kept == len(header) or header[first_kept] in _BLANK):
            keep = []  # written whole after our headers: that blank line is ours, not the message's
        for index in keep:
            write(header[index])
        length = meta.get("content-length", "")
        if header and header[-1] in _BLANK:
            if length.isdigit() and self._length_is_valid(int(length)):
                self._copy(int(length), write)
            else:
                self._scan(write)
        date_header = next((line[5:].strip() for line in header if line[:5].lower() == b"date:"), None)
        return Entry(
            start=start,
            end=self.tell(),
            flags=flags_from_status(meta.get("status", ""), meta.get("x-status", ""), meta.get("x-keywords", "")),
            internal_date=date,
            date_header=date_header,
            is_folder_data=any(line[:7].lower() == b"x-imap:" for line in header),
        )

    def _length_is_valid(self, length: int) -> bool:
        assert self._pushed is None
        here = self._handle.tell()
        if here + length > self._size:
            return False
        try:
            last = b"\n"
            if length:
                self._handle.seek(here + length - 1)
                last = self._handle.read(1)
            else:
                self._handle.seek(here)
            tail = self._handle.read(8)
        finally:
            self._handle.seek(here)
        expected = (b"" if last == b"\n" else b"\n") + b"\n"
        if len(tail) < len(expected):
            return expected.startswith(tail)  # the file ends without the last separator
        return tail.startswith(expected) and (tail == expected or tail[len(expected) :].startswith(b"From "))

    def _copy(self, length: int, write: Callable[[bytes], None]) -> None:
        """Exactly `length` octets of body, unquoted, then the separator after them."""
        remaining = length
        last = b"\n"
        while remaining:
            data, at_start = self._read(min(LINE_CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            last = data[-1:]
            write(_unquote(data) if at_start else data)
        self._at_start = True  # the separator ends the line, whatever the body did
        for _ in range(1 if last == b"\n" else 2):
            data, _ = self._read(1)
            if data != b"\n":
                if data:
                    self._push(data, False)
                break
        self._at_start = True

    def _scan(self, write: Callable[[bytes], None]) -> None:
        """Body lines up to a From line after a blank line (or the end); that blank line is the separator.

        The hot loop of an import: lines are gathered and handed on in pieces of 64 KiB or more."""
        pending: bytes | None = None
        first = True
        out = bytearray()
        readline = self._handle.readline
        at_start = self._at_start
        try:
            while True:
                if self._pushed is not None:
                    data, at_start = self._read()
                else:
                    data = readline(LINE_CHUNK)
                    self._at_start = data.endswith(b"\n")
                if not data:
                    return
                if at_start:
                    if data[:5] == b"From " and (pending is not None or first):
                        self._push(data, True)
                        self._at_start = True
                        return
                    if pending is not None:
                        out += pending
                        pending = None
                    if data in _BLANK:
                        pending = data
                        first = False
                        at_start = True
                        continue
                    if data[:1] == b">" and _QUOTED.match(data):
                        data = data[1:]
                elif pending is not None:
                    out += pending
                    pending = None
                first = False
                out += data
                if len(out) >= LINE_CHUNK:
                    write(bytes(out))
                    out.clear()
                at_start = self._at_start
        finally:
            if out:
                write(bytes(out))

    def _skip_to_from(self) -> None:
        while True:
            data, at_start = self._read()
            if not data:
                return
            if at_start and data.startswith(b"From "):
                self._push(data, at_start)
                return


def _metadata(header: list[bytes]) -> tuple[dict[str, str], list[int], bool]:
    """The mbox headers (name → value), the indexes of the header lines that belong to the message, and
    whether the mbox headers came first (as we write them)."""
    meta: dict[str, str] = {}
    index = 0
    while index < len(header):
        name = _header_name(header[index])
        if name not in _LEADING or name in meta:
            break
        meta[name] = header[index].partition(b":")[2].strip().decode("latin-1")
        index += 1
    if meta:
        return meta, list(range(index, len(header))), True
    end = len(header) - 1 if header and header[-1] in _BLANK else len(header)
    index = end
    while index > 0:
        name = _header_name(header[index - 1])
        if name not in _TRAILING or name in meta:
            break
        meta[name] = header[index - 1].partition(b":")[2].strip().decode("latin-1")
        index -= 1
    return meta, [i for i in range(len(header)) if not index <= i < end], False


# ---- writing ---------------------------------------------------------------------------------------


def _quoted_chunks(handle: BinaryIO) -> tuple[int, int, bytes]:
    """One pass over a message: (offset just past its header's blank line, 0 when the header is empty,
    -1 when there is no blank line; octets from there to the end once quoted; the last octet)."""
    body_start = -1
    quoted = 0
    last = b""
    at_start = True
    offset = 0
    while True:
        data = handle.readline(LINE_CHUNK)
        if not data:
            break
        if body_start < 0 and at_start and data in _BLANK:
            body_start = offset + len(data) if offset else 0  # 0: the header is empty
            quoted = 0
        else:
            quoted += len(data) + (1 if at_start and _QUOTED.match(data) else 0)
        offset += len(data)
        at_start = data.endswith(b"\n")
        last = data[-1:]
    return body_start, quoted, last


def write_message(out: BinaryIO, message: BinaryIO, *, flags: frozenset[str], internal_date: datetime) -> int:
    """Append one message (an open blob) to `out` in mboxrd with its flags; returns the octets written."""
    body_start, body_quoted, last = _quoted_chunks(message)
    message.seek(0)
    total = message.seek(0, os.SEEK_END)
    message.seek(0)
    is_whole = body_start <= 0  # no separator, or an empty header: the whole message is the "body"
    if is_whole:
        message.seek(0)
        length = 0
        at_start = True
        while data := message.readline(LINE_CHUNK):
            length += len(data) + (1 if at_start and _QUOTED.match(data) else 0)
            at_start = data.endswith(b"\n")
        message.seek(0)
    else:
        length = body_quoted
    date = internal_date.astimezone(UTC).replace(tzinfo=None)
    head = [b"From MAILER-DAEMON " + date.ctime().encode() + b"\n", *status_headers(flags)]
    head.append(b"Content-Length: %d\n" % length)
    if is_whole:
        head.append(b"\n")
    written = 0
    for line in head:
        out.write(line)
        written += len(line)
    at_start = True
    while data := message.readline(LINE_CHUNK):
        if at_start and _QUOTED.match(data):
            out.write(b">")
            written += 1
        out.write(data)
        written += len(data)
        at_start = data.endswith(b"\n")
    empty_body = total == 0 if is_whole else total == body_start
    tail = (b"" if empty_body or last == b"\n" else b"\n") + b"\n"
    out.write(tail)
    return written + len(tail)
