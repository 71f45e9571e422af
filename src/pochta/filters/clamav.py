"""Antivirus: every message is streamed to clamd, ClamAV's daemon, with its INSTREAM command.

The protocol (clamd(8)): the command `zINSTREAM\\0`, then the message in chunks, each preceded by its length
as a 4-octet big-endian number, then a zero length. clamd answers one NUL-terminated line and closes:
`stream: OK`, `stream: <signature> FOUND`, or `<text> ERROR` (`INSTREAM size limit exceeded. ERROR` once
more than its StreamMaxLength arrived). clamd expects one connection per scan, so there is no pool.

`instream()` and `parse_reply()` are the protocol without sockets; `Clamd` runs them over one connection from
`net`; `VirusCheck` turns the result into the pipeline's verdict and the RFC 5235 `virustest` fact.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import mmap
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pochta import net
from pochta.filters.pipeline import Action, Inbound, Verdict
from pochta.proto.smtp.replies import Reply

log = logging.getLogger(__name__)

COMMAND = b"zINSTREAM\0"  # "z": the reply ends with NUL rather than a newline
END = b"\0\0\0\0"  # the zero-length chunk that ends the stream
CHUNK_SIZE = 256 * 1024  # octets per chunk; one mapped slice is copied at a time, never the whole message
MAX_REPLY = 4096  # longer than any clamd reply; more is a broken peer

# RFC 5235 §3.1 virustest values
NOT_SCANNED = "0"
CLEAN = "1"
INFECTED = "5"


class Status(enum.Enum):
    CLEAN = enum.auto()
    INFECTED = enum.auto()
    OVERSIZE = enum.auto()  # over clamd's StreamMaxLength: not scanned
    ERROR = enum.auto()  # clamd could not scan it (its words in `detail`)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    status: Status
    detail: str = ""  # the signature name when INFECTED, clamd's text when ERROR


class ClamdUnavailable(Exception):
    """clamd could not be reached, did not answer in time, or closed without an answer."""


def instream(content: bytes | mmap.mmap, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The whole INSTREAM request in pieces of at most `chunk_size` + 18 octets. A message that fits one
    chunk is one piece (one write); a mapped message is sliced one chunk at a time."""
    size = len(content)
    head = COMMAND
    for start in range(0, size, chunk_size):
        piece = content[start : start + chunk_size]
        tail = END if start + chunk_size >= size else b""
        yield head + len(piece).to_bytes(4, "big") + piece + tail
        head = b""
    if size == 0:
        yield COMMAND + END


_SIGNATURE_UNSAFE = re.compile(r"[^A-Za-z0-9._:+/-]")


def parse_reply(raw: bytes) -> ScanResult:
    """clamd's answer to INSTREAM (NUL or newline terminated) → the scan result."""
    text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
    if text == "stream: OK":
        return ScanResult(status=Status.CLEAN)
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        name = text.removeprefix("stream: ").removesuffix(" FOUND").strip()
        # the name goes into an SMTP reply: printable, no spaces, bounded
        return ScanResult(status=Status.INFECTED, detail=_SIGNATURE_UNSAFE.sub("?", name)[:100] or "unknown")
    if text.endswith("ERROR") and "size limit exceeded" in text:
        return ScanResult(status=Status.OVERSIZE, detail=text)
    return ScanResult(status=Status.ERROR, detail=text[:200] or "empty reply")


class Clamd:
    """A clamd client: one connection per scan, over a unix socket (a path) or TCP ((host, port))."""

    def __init__(
        self,
        address: str | tuple[str, int],
        *,
        timeout: float,
        connect_timeout: float,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._connect_timeout = min(connect_timeout, timeout)
        self._chunk_size = chunk_size

    def __str__(self) -> str:
        if isinstance(self.address, str):
            return f"unix:{self.address}"
        return f"tcp:{self.address[0]}:{self.address[1]}"

    async def scan(self, content: bytes | mmap.mmap) -> ScanResult:
        """Scan one message; raises ClamdUnavailable when clamd is down, slow, or hangs up unanswered."""
        stream: net.Stream | None = None
        try:
            async with asyncio.timeout(self._timeout):
                stream = await self._connect()
                for piece in instream(content, chunk_size=self._chunk_size):
                    stream.write(piece)  # a no-op once clamd hung up (over its limit): its reply is waiting
                    await stream.drain()
                result = await _read_reply(stream)
        except TimeoutError as exc:
            raise ClamdUnavailable(f"no answer within {self._timeout:g} s") from exc
        except OSError as exc:  # refused, no such socket, reset
            raise ClamdUnavailable(exc.strerror or str(exc) or type(exc).__name__) from exc
        finally:
            if stream is not None:
                stream.abort()  # clamd has answered and closes its end; nothing of ours is left to send
        return result

    async def _connect(self) -> net.Stream:
        if isinstance(self.address, str):
            return await net.connect_unix(
                self.address, connect_timeout=self._connect_timeout, idle_timeout=self._timeout
            )
        host, port = self.address
        return await net.connect(host, port, connect_timeout=self._connect_timeout, idle_timeout=self._timeout)


async def _read_reply(stream: net.Stream) -> ScanResult:
    reply = b""
    while b"\0" not in reply and len(reply) < MAX_REPLY:
        data = await stream.read(MAX_REPLY)
        if not data:
            break
        reply += data
    if not reply:
        raise ClamdUnavailable("connection closed without an answer")
    return parse_reply(reply)


class OnOversize(enum.StrEnum):
    ACCEPT = "accept"  # unscanned (virustest 0)
    TEMPFAIL = "tempfail"
    REJECT = "reject"


UNAVAILABLE = Reply(code=451, status="4.7.1", text="virus scanner unavailable, try again later")
OVERSIZE_TEMPFAIL = Reply(code=451, status="4.3.4", text="message too large to scan for viruses, try again later")
OVERSIZE_REJECT = Reply(code=552, status="5.3.4", text="message too large to scan for viruses")


class VirusCheck:
    """The pipeline check: infected → 554 5.7.1 naming the signature; clamd down or slow → 451 4.7.1, or
    accepted unscanned with `fail_open`; too large to scan → `on_oversize`."""

    name = "clamav"

    def __init__(self, clamd: Clamd, *, fail_open: bool, on_oversize: OnOversize, max_scan_size: int) -> None:
        self._clamd = clamd
        self._fail_open = fail_open
        self._on_oversize = on_oversize
        self._max_scan_size = max_scan_size

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        size = len(message.content)
        if self._max_scan_size and size > self._max_scan_size:
            return self._oversize(f"{size} octets over max_scan_size {self._max_scan_size}")
        try:
            result = await self._clamd.scan(message.content)
        except ClamdUnavailable as exc:
            return self._unavailable(message, str(exc))
        match result.status:
            case Status.CLEAN:
                return Verdict(facts={"virustest": CLEAN})
            case Status.INFECTED:
                return Verdict(
                    action=Action.REJECT,
                    reply=Reply(code=554, status="5.7.1", text=f"message refused: virus found ({result.detail})"),
                    facts={"virustest": INFECTED},
                    reason=f"virus {result.detail}",
                )
            case Status.OVERSIZE:
                return self._oversize(f"over clamd's StreamMaxLength ({size} octets)")
            case Status.ERROR:
                return self._unavailable(message, f"clamd: {result.detail}")

    def _unavailable(self, message: Inbound, error: str) -> Verdict:
        log.warning(
            "clamd unavailable id=%s clamd=%s error=%r %s",
            message.id,
            self._clamd,
            error,
            "accepting unscanned (fail_open)" if self._fail_open else "tempfailing",
        )
        if self._fail_open:
            return Verdict(facts={"virustest": NOT_SCANNED}, reason=f"not scanned: {error}")
        return Verdict(action=Action.TEMPFAIL, reply=UNAVAILABLE, reason=error)

    def _oversize(self, why: str) -> Verdict:
        reason = f"too large to scan: {why}"
        match self._on_oversize:
            case OnOversize.ACCEPT:
                return Verdict(facts={"virustest": NOT_SCANNED}, reason=reason)
            case OnOversize.TEMPFAIL:
                return Verdict(action=Action.TEMPFAIL, reply=OVERSIZE_TEMPFAIL, reason=reason)
            case OnOversize.REJECT:
                return Verdict(action=Action.REJECT, reply=OVERSIZE_REJECT, reason=reason)
