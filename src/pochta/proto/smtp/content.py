"""Reading message content: DATA (dot-stuffed, ends at <CRLF>.<CRLF>) and BDAT chunks (counted octets).

Both readers consume from the connection's buffer and return what they read at once, so a message is
never held whole: only a tail of at most two octets (a CR, or ".\\r" at a line start) waits for more.
"""

from __future__ import annotations

_CRLF = b"\r\n"
_END = b".\r\n"  # at the start of a line: the end of the content (RFC 5321 §4.1.1.4)
_DOT = 0x2E


class HeaderMeter:
    """Counts the header block, up to and including the first empty line (RFC 5322 §2.1)."""

    __slots__ = ("_recent", "is_done", "size")

    def __init__(self) -> None:
        self.size = 0
        self.is_done = False
        self._recent = _CRLF  # content starting with CRLF has an empty header block

    def count(self, data: bytes) -> None:
        if self.is_done or not data:
            return
        window = self._recent + data
        end = window.find(b"\r\n\r\n")
        if end == -1:
            self.size += len(data)
            self._recent = window[-3:]
            return
        self.size += max(0, end + 4 - len(self._recent))
        self.is_done = True


class DataReader:
    """Dot-unstuffing and end detection for DATA content, strict about line endings.

    Only CRLF ends a line, so only ``<CRLF>.<CRLF>`` (or ``.<CRLF>`` at the very start) ends the content.
    A CR or LF outside CRLF is content and sets ``has_bare_line_ending``: the message must be refused,
    which defeats SMTP smuggling (RFC 5321 §2.3.8, §4.1.1.4; SEC Consult, December 2023).
    """

    __slots__ = ("_is_line_start", "has_bare_line_ending", "header", "is_done", "size")

    def __init__(self) -> None:
        self._is_line_start = True
        self.is_done = False
        self.has_bare_line_ending = False
        self.size = 0
        self.header = HeaderMeter()

    def read(self, buffer: bytearray) -> bytes:
        """Consume what can be decided from ``buffer``; return the content it held."""
        out = bytearray()
        position = 0
        length = len(buffer)
        while not self.is_done and position < length:
            if self._is_line_start and buffer[position] == _DOT:
                head = bytes(buffer[position : position + 3])
                if head == _END:
                    self.is_done = True
                    position += 3
                    break
                if _END.startswith(head):
                    break  # "." or ".\r": wait for the next octet
                position += 1  # RFC 5321 §4.5.2: drop the first of a line's leading dots
                self._is_line_start = False
            found = buffer.find(b"\r\n.", position)
            if found != -1:
                end = found + 2
            elif buffer.endswith(b"\r") and not buffer.endswith(b"\r\n"):
                end = length - 1  # a CR that may start a CRLF waits for the next octet
            else:
                end = length
            if end <= position:
                break
            segment = bytes(buffer[position:end])
            self._check_line_endings(segment)
            out += segment
            self._is_line_start = segment.endswith(_CRLF)
            position = end
        del buffer[:position]
        self.size += len(out)
        self.header.count(bytes(out))
        return bytes(out)

    def _check_line_endings(self, segment: bytes) -> None:
        crlf = segment.count(_CRLF)
        if segment.count(b"\r") != crlf or segment.count(b"\n") != crlf:
            self.has_bare_line_ending = True  # RFC 5321 §2.3.8: CR and LF only as CRLF


class ChunkReader:
    """A BDAT chunk: exactly ``size`` octets, taken raw (RFC 3030 §2)."""

    __slots__ = ("remaining", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.remaining = size

    @property
    def is_done(self) -> bool:
        return self.remaining == 0

    def read(self, buffer: bytearray) -> bytes:
        taken = bytes(buffer[: self.remaining])
        del buffer[: len(taken)]
        self.remaining -= len(taken)
        return taken
