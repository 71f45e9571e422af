"""The client side of SMTP as a sans-IO core (RFC 5321 with ESMTP extensions), for outbound delivery.

:class:`ClientConnection` turns server bytes into :class:`Replied` events (h11's pull style) and our
commands into bytes; it pairs each reply with the command it answers, so pipelined commands
(RFC 2920) are matched in order. :class:`Transaction` runs one MAIL transaction over a connection
and reports one result per recipient. A server's malformed reply is a :class:`MalformedReply`
event carrying a 451 (treated as a temporary failure; close the connection), never an exception;
only our own misuse raises :class:`LocalProtocolError`.

Bounces for messages the remote cannot take are the caller's job, sent with ``MAIL FROM:<>``.
"""

from __future__ import annotations

import base64
import enum
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pochta.mail.address import Address

from .events import Body, ConnectionClosed, NeedData, Notify, Orcpt, Ret
from .replies import Reply
from .server import LocalProtocolError

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")  # RFC 3463 §2, RFC 2034 §4
_CODE_LINE = re.compile(r"([2-5]\d\d)([ -]|$)(.*)")  # RFC 5321 §4.2: Reply-code [ SP / "-" ] textstring
_SAFE_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HOSTNAME = re.compile(r"[A-Za-z0-9.\-:\[\]]+")


class Command(enum.Enum):
    """What a reply answers."""

    GREETING = enum.auto()  # the 220 banner (RFC 5321 §3.1)
    EHLO = enum.auto()
    HELO = enum.auto()
    STARTTLS = enum.auto()
    AUTH = enum.auto()  # AUTH and each SASL response line (RFC 4954 §4)
    MAIL = enum.auto()
    RCPT = enum.auto()
    DATA = enum.auto()  # the DATA command itself (354 expected)
    CONTENT = enum.auto()  # the content ended by <CRLF>.<CRLF>: the final reply
    BDAT = enum.auto()
    RSET = enum.auto()
    NOOP = enum.auto()
    QUIT = enum.auto()
    UNSOLICITED = enum.auto()  # nothing was outstanding: only 421 may come so (RFC 5321 §3.8)


@dataclass(frozen=True, slots=True, kw_only=True)
class Replied:
    """The server answered ``command`` with ``reply``."""

    command: Command
    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedReply:
    """The server sent something that is not a reply; ``reply`` is a 451 to record. Close the connection."""

    reply: Reply


Event = Replied | MalformedReply | NeedData | ConnectionClosed


def protocol_error(text: str) -> Reply:
    """The temporary failure a peer's protocol error counts as (RFC 3463 X.5.0)."""
    return Reply(code=451, status="4.5.0", text=f"protocol error: {text}")


# ---- replies ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyLimits:
    max_line: int = 8192  # RFC 5321 §4.5.3.1.5 says 512 with CRLF; real servers send longer EHLO lines
    max_lines: int = 1000  # lines in one multi-line reply


class ReplyParser:
    """Split a byte stream into replies (RFC 5321 §4.2): ``code-text`` lines continue, ``code text`` ends."""

    __slots__ = ("_buffer", "_limits", "_lines")

    def __init__(self, limits: ReplyLimits | None = None) -> None:
        self._limits = limits or ReplyLimits()
        self._buffer = bytearray()
        self._lines: list[tuple[int, str]] = []

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        self._buffer.clear()
        self._lines.clear()

    @property
    def has_pending_data(self) -> bool:
        return bool(self._buffer or self._lines)

    def next_reply(self) -> Reply | MalformedReply | None:
        """The next whole reply, a MalformedReply, or None when more bytes are needed."""
        while True:
            end = self._buffer.find(b"\n")
            if end == -1:
                if len(self._buffer) > self._limits.max_line:
                    return MalformedReply(reply=protocol_error("reply line too long"))
                return None
            raw = bytes(self._buffer[:end]).removesuffix(b"\r")  # a bare LF is tolerated from servers
            del self._buffer[: end + 1]
            if len(raw) > self._limits.max_line:
                return MalformedReply(reply=protocol_error("reply line too long"))
            line = _SAFE_TEXT.sub(" ", raw.decode("utf-8", errors="replace"))
            match = _CODE_LINE.fullmatch(line)
            if match is None:
                return MalformedReply(reply=protocol_error(f"not a reply line: {line[:80]!r}"))
            code = int(match.group(1))
            if self._lines and self._lines[0][0] != code:  # RFC 5321 §4.2.1: one code on every line
                return MalformedReply(reply=protocol_error("reply code changed within a multi-line reply"))
            self._lines.append((code, match.group(3)))
            if len(self._lines) > self._limits.max_lines:
                return MalformedReply(reply=protocol_error("too many reply lines"))
            if match.group(2) != "-":
                texts = [text for _, text in self._lines]
                self._lines = []
                return _make_reply(code, texts)


def _make_reply(code: int, texts: list[str]) -> Reply:
    """A Reply, with the enhanced status code taken off each line that starts with it (RFC 2034 §4)."""
    first = _STATUS.match(texts[0])
    status = None
    if first is not None and first.group(1) == str(code)[0]:  # RFC 3463 §2: class matches the code
        status = texts[0][: first.end()].strip()
        texts = [text[len(status) :].lstrip(" ") if text.startswith(status) else text for text in texts]
    return Reply(code=code, status=status, text=tuple(texts) if len(texts) > 1 else texts[0])


def describe(reply: Reply) -> str:
    """The reply on one line, as in a DSN's Diagnostic-Code (RFC 3464 §2.3.6)."""
    text = " ".join(line for line in reply.lines if line)
    return " ".join(part for part in (str(reply.code), reply.status, text) if part)


# ---- capabilities -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the server offered in its EHLO reply (RFC 5321 §4.1.1.1); all False after HELO."""

    is_esmtp: bool = False
    has_pipelining: bool = False  # RFC 2920
    has_size: bool = False  # RFC 1870
    size_limit: int | None = None  # RFC 1870 §4: SIZE n; None or 0 means no fixed limit
    has_8bitmime: bool = False  # RFC 6152
    has_smtputf8: bool = False  # RFC 6531
    has_chunking: bool = False  # RFC 3030
    has_binarymime: bool = False  # RFC 3030 §3
    has_dsn: bool = False  # RFC 3461
    has_starttls: bool = False  # RFC 3207
    has_enhanced_status_codes: bool = False  # RFC 2034
    auth_mechanisms: frozenset[str] = frozenset()  # RFC 4954 §3
    keywords: frozenset[str] = frozenset()  # every keyword, upper-cased


def parse_capabilities(reply: Reply) -> Capabilities:
    """Read the EHLO keywords: every line after the first is ``keyword *(SP param)`` (RFC 5321 §4.1.1.1)."""
    keywords: set[str] = set()
    size_limit: int | None = None
    has_size = False
    auth: set[str] = set()
    for line in reply.lines[1:]:
        words = line.split()
        if not words:
            continue
        keyword = words[0].upper()
        keywords.add(keyword)
        if keyword == "SIZE":
            has_size = True
            if len(words) > 1 and words[1].isdigit():  # RFC 1870 §4: optional maximum in octets
                size_limit = int(words[1]) or None
        elif keyword == "AUTH" or keyword.startswith("AUTH="):  # "AUTH=" is an old, still-seen form
            names = words[1:] if keyword == "AUTH" else [keyword[5:], *words[1:]]
            auth.update(name.upper() for name in names if name)
    return Capabilities(
        is_esmtp=True,
        has_pipelining="PIPELINING" in keywords,
        has_size=has_size,
        size_limit=size_limit,
        has_8bitmime="8BITMIME" in keywords,
        has_smtputf8="SMTPUTF8" in keywords,
        has_chunking="CHUNKING" in keywords,
        has_binarymime="BINARYMIME" in keywords,
        has_dsn="DSN" in keywords,
        has_starttls="STARTTLS" in keywords,
        has_enhanced_status_codes="ENHANCEDSTATUSCODES" in keywords,
        auth_mechanisms=frozenset(auth),
        keywords=frozenset(keywords),
    )


# ---- content ------------------------------------------------------------------------------------


class DotStuffer:
    """DATA content for the wire: dot-stuffed across chunk boundaries, ended by ``<CRLF>.<CRLF>``.

    A bare CR or LF is sent as CRLF (RFC 5321 §2.3.8 forbids them; sending them would let a lenient
    server see a different end of data, the SMTP smuggling of December 2023).
    """

    __slots__ = ("_has_pending_cr", "_is_line_start", "is_done")

    def __init__(self) -> None:
        self._is_line_start = True
        self._has_pending_cr = False
        self.is_done = False

    def stuff(self, chunk: bytes) -> bytes:
        if self.is_done:
            raise LocalProtocolError("content already ended")
        if not chunk:
            return b""
        if self._has_pending_cr:
            chunk = b"\r" + chunk
            self._has_pending_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]  # it may start a CRLF split across chunks: decide with the next chunk
            self._has_pending_cr = True
        crlf = chunk.count(b"\r\n")
        if chunk.count(b"\r") == crlf and chunk.count(b"\n") == crlf:  # already all CRLF (the usual): no copies
            text = chunk
        else:
            text = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        text = text.replace(b"\r\n.", b"\r\n..")  # RFC 5321 §4.5.2: double a line's leading dot
        if self._is_line_start and text.startswith(b"."):
            text = b"." + text
        if text:
            self._is_line_start = text.endswith(b"\r\n")
        return text

    def end(self) -> bytes:
        """The rest: a CRLF if the content lacked a final one, then ``.<CRLF>`` (RFC 5321 §4.1.1.4)."""
        if self.is_done:
            raise LocalProtocolError("content already ended")
        self.is_done = True
        if self._has_pending_cr:
            return b"\r\n.\r\n"
        return b".\r\n" if self._is_line_start else b"\r\n.\r\n"


def encode_xtext(text: str) -> str:
    """RFC 3461 §4: "!" to "~" but "+" and "=" stand for themselves; other octets are ``+HH``."""
    return "".join(
        chr(octet) if 0x21 <= octet <= 0x7E and octet not in (0x2B, 0x3D) else f"+{octet:02X}"
        for octet in text.encode("utf-8")
    )


# ---- the connection -----------------------------------------------------------------------------


class ClientConnection:
    """Our side of one SMTP connection. Each command method returns the bytes to write."""

    def __init__(self, *, hostname: str, is_tls: bool = False, limits: ReplyLimits | None = None) -> None:
        if not _HOSTNAME.fullmatch(hostname):
            raise LocalProtocolError(f"bad EHLO name {hostname!r}")
        self.hostname = hostname
        self.is_tls = is_tls
        self.capabilities = Capabilities()
        self.is_closed = False
        self._parser = ReplyParser(limits)
        self._pending: deque[Command] = deque([Command.GREETING])
        self._is_eof = False
        self._is_waiting_for_tls = False
        self._stuffer: DotStuffer | None = None

    @property
    def pending(self) -> tuple[Command, ...]:
        """Commands sent and not yet answered, oldest first."""
        return tuple(self._pending)

    # ---- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means it closed its side."""
        if not data:
            self._is_eof = True
        elif not self._is_waiting_for_tls and not self.is_closed:
            self._parser.feed(data)

    def next_event(self) -> Event:
        if self.is_closed:
            return ConnectionClosed()
        parsed = self._parser.next_reply()
        if parsed is None:
            if self._is_eof:
                self.is_closed = True
                return ConnectionClosed()
            return NeedData()
        if isinstance(parsed, MalformedReply):
            self.is_closed = True
            return parsed
        if not self._pending:
            self.is_closed = True  # RFC 5321 §3.8: a 421 may come at any time; anything else is garbage
            if parsed.code == 421:
                return Replied(command=Command.UNSOLICITED, reply=parsed)
            return MalformedReply(reply=protocol_error(f"unexpected reply {describe(parsed)[:80]}"))
        command = self._pending.popleft()
        self._apply(command, parsed)
        return Replied(command=command, reply=parsed)

    def _apply(self, command: Command, reply: Reply) -> None:
        if command is Command.EHLO and reply.code == 250:
            self.capabilities = parse_capabilities(reply)
        elif command is Command.HELO and reply.code == 250:
            self.capabilities = Capabilities()
        elif command is Command.STARTTLS and reply.code == 220:
            # RFC 3207 §4.2: anything the server sent before the handshake is dropped (response injection)
            self._parser.clear()
            self._is_waiting_for_tls = True
        elif command is Command.DATA and reply.code == 354:
            self._stuffer = DotStuffer()
        elif command is Command.QUIT or reply.code == 421:
            self.is_closed = True  # RFC 5321 §3.8: 421 closes the session

    def tls_established(self) -> None:
        """The TLS handshake after STARTTLS finished: send EHLO again (RFC 3207 §4.2)."""
        if not self._is_waiting_for_tls:
            raise LocalProtocolError("no STARTTLS was accepted")
        self._is_waiting_for_tls = False
        self.is_tls = True
        self.capabilities = Capabilities()

    # ---- commands -------------------------------------------------------------------------------

    def _command(self, command: Command, line: str) -> bytes:
        if self.is_closed or self._is_waiting_for_tls:
            raise LocalProtocolError(f"cannot send {command.name} now")
        if "\r" in line or "\n" in line:
            raise LocalProtocolError("CR or LF in a command")
        self._pending.append(command)
        return f"{line}\r\n".encode()

    def ehlo(self) -> bytes:
        return self._command(Command.EHLO, f"EHLO {self.hostname}")  # RFC 5321 §4.1.1.1

    def helo(self) -> bytes:
        """After a 5xx to EHLO (RFC 5321 §3.2: an old server): HELO, no extensions."""
        return self._command(Command.HELO, f"HELO {self.hostname}")

    def starttls(self) -> bytes:
        return self._command(Command.STARTTLS, "STARTTLS")  # RFC 3207 §4

    def auth_plain(self, *, username: str, password: str, authzid: str = "") -> bytes:
        """AUTH PLAIN with an initial response (RFC 4954 §4, RFC 4616 §2)."""
        message = f"{authzid}\0{username}\0{password}".encode()
        return self._command(Command.AUTH, f"AUTH PLAIN {base64.b64encode(message).decode('ascii')}")

    def auth_login(self, *, username: str) -> bytes:
        """AUTH LOGIN with the username as initial response; answer the 334 with ``auth_response(password)``."""
        return self._command(Command.AUTH, f"AUTH LOGIN {base64.b64encode(username.encode()).decode('ascii')}")

    def auth_response(self, data: bytes) -> bytes:
        """A SASL response line after a 334 (RFC 4954 §4)."""
        return self._command(Command.AUTH, base64.b64encode(data).decode("ascii"))

    def auth_cancel(self) -> bytes:
        return self._command(Command.AUTH, "*")  # RFC 4954 §4

    def mail(
        self,
        path: Address | None,
        *,
        size: int | None = None,
        body: Body | None = None,
        is_smtputf8: bool = False,
        ret: Ret | None = None,
        envid: str | None = None,
    ) -> bytes:
        """MAIL FROM with only the parameters the server offered (RFC 5321 §4.1.1.2)."""
        caps = self.capabilities
        params: list[str] = []
        if size is not None and caps.has_size:
            params.append(f"SIZE={size}")  # RFC 1870 §6
        if body is Body.EIGHT_BIT_MIME and caps.has_8bitmime:
            params.append("BODY=8BITMIME")  # RFC 6152 §2
        elif body is Body.BINARY_MIME and caps.has_binarymime and caps.has_chunking:
            params.append("BODY=BINARYMIME")  # RFC 3030 §3
        if is_smtputf8 and caps.has_smtputf8:
            params.append("SMTPUTF8")  # RFC 6531 §3.4
        if caps.has_dsn:
            if ret is not None:
                params.append(f"RET={ret.value}")  # RFC 3461 §4.3
            if envid is not None:
                params.append(f"ENVID={encode_xtext(envid)}")  # RFC 3461 §4.4
        reverse_path = "<>" if path is None else f"<{path}>"  # RFC 5321 §4.5.5: the null path
        return self._command(Command.MAIL, " ".join([f"MAIL FROM:{reverse_path}", *params]))

    def rcpt(self, path: Address, *, notify: frozenset[Notify] | None = None, orcpt: Orcpt | None = None) -> bytes:
        """RCPT TO, with NOTIFY and ORCPT when the server offered DSN (RFC 3461 §4.1, §4.2)."""
        params: list[str] = []
        if self.capabilities.has_dsn:
            if notify:
                order = [Notify.NEVER, Notify.SUCCESS, Notify.FAILURE, Notify.DELAY]
                params.append("NOTIFY=" + ",".join(n.value for n in order if n in notify))
            if orcpt is not None:
                params.append(f"ORCPT={orcpt.addr_type};{encode_xtext(orcpt.address)}")
        return self._command(Command.RCPT, " ".join([f"RCPT TO:<{path}>", *params]))

    def data(self) -> bytes:
        return self._command(Command.DATA, "DATA")  # RFC 5321 §4.1.1.4

    def send_content(self, chunk: bytes) -> bytes:
        """A piece of the message after 354, dot-stuffed."""
        if self._stuffer is None:
            raise LocalProtocolError("no DATA was accepted")
        return self._stuffer.stuff(chunk)

    def end_content(self) -> bytes:
        """The end of the content after 354; the server's final reply follows."""
        if self._stuffer is None:
            raise LocalProtocolError("no DATA was accepted")
        tail = self._stuffer.end()
        self._stuffer = None
        self._pending.append(Command.CONTENT)
        return tail

    def bdat(self, chunk: bytes, *, is_last: bool) -> bytes:
        """``BDAT size [LAST]`` and the chunk, raw (RFC 3030 §2)."""
        return self._command(Command.BDAT, f"BDAT {len(chunk)}{' LAST' if is_last else ''}") + chunk

    def rset(self) -> bytes:
        return self._command(Command.RSET, "RSET")

    def noop(self) -> bytes:
        return self._command(Command.NOOP, "NOOP")

    def quit(self) -> bytes:
        return self._command(Command.QUIT, "QUIT")


# ---- one transaction ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientRequest:
    address: Address
    notify: frozenset[Notify] | None = None  # RFC 3461 §4.1
    orcpt: Orcpt | None = None  # RFC 3461 §4.2


@dataclass(frozen=True, slots=True, kw_only=True)
class MailRequest:
    """The envelope of one message to send."""

    mail_from: Address | None  # None: the null reverse-path, for bounces (RFC 5321 §4.5.5)
    recipients: tuple[RecipientRequest, ...]
    size: int | None = None
    body: Body | None = None
    is_smtputf8: bool = False
    ret: Ret | None = None
    envid: str | None = None


class Outcome(enum.Enum):
    ACCEPTED = enum.auto()  # the server took responsibility (RFC 5321 §4.1.1.4 250 after data)
    TEMPORARY = enum.auto()  # 4xx, a protocol error or a lost connection: retry later
    PERMANENT = enum.auto()  # 5xx: bounce


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientResult:
    address: Address
    outcome: Outcome
    reply: Reply


class Phase(enum.Enum):
    ENVELOPE = enum.auto()  # MAIL and RCPTs (and DATA) sent, replies coming
    CONTENT = enum.auto()  # send the content: Transaction.content(), then end_content()
    FINAL = enum.auto()  # content sent, waiting for the final reply
    DONE = enum.auto()  # results are known and every reply consumed


def _outcome(reply: Reply) -> Outcome:
    if reply.code < 300:
        return Outcome.ACCEPTED
    return Outcome.PERMANENT if reply.code >= 500 else Outcome.TEMPORARY


def missing_support(request: MailRequest, capabilities: Capabilities) -> Reply | None:
    """Why the server cannot take this message as it is (turn it into a bounce), or None.

    A lacking 8BITMIME is not reported here: see :attr:`Transaction.lacks_8bitmime`.
    """
    if request.is_smtputf8 and not capabilities.has_smtputf8:
        # RFC 6531 §3.2: no downgrade; RFC 6533 §3: X.6.7 for addresses that need SMTPUTF8
        return Reply(code=553, status="5.6.7", text="remote does not support SMTPUTF8")
    if request.body is Body.BINARY_MIME and not (capabilities.has_binarymime and capabilities.has_chunking):
        return Reply(code=554, status="5.6.3", text="remote does not support BINARYMIME")  # RFC 3030 §3
    limit = capabilities.size_limit
    if request.size is not None and limit and request.size > limit:  # RFC 1870 §6
        return Reply(code=552, status="5.3.4", text=f"message size exceeds remote limit of {limit} octets")
    return None


class Transaction:
    """One MAIL transaction, pipelined when the server offers PIPELINING (RFC 2920 §3.1).

    Write ``start()``; pass every :class:`Replied` event to ``receive()`` and write what it returns;
    in :attr:`phase` CONTENT write ``content(chunk)`` for each chunk, then ``end_content()`` (with BDAT
    and without PIPELINING, wait until ``is_waiting`` is False before the next chunk, RFC 3030 §4.2).
    When the connection fails (MalformedReply, ConnectionClosed), call ``fail(reply)``. At DONE,
    ``results`` holds one result per recipient, in the order of the request.

    When the server lacks 8BITMIME, :attr:`lacks_8bitmime` is True and the message would go without
    BODY=: most servers pass 8-bit content anyway, so sending is allowed; RFC 6152 §3 would have us
    downgrade or bounce, which the caller may choose instead (bounce with 5.6.3, not calling ``start()``).
    """

    def __init__(self, connection: ClientConnection, request: MailRequest, *, use_chunking: bool = False) -> None:
        if not request.recipients:
            raise LocalProtocolError("a transaction needs recipients")
        self.connection = connection
        self.request = request
        caps = connection.capabilities
        self.refusal = missing_support(request, caps)
        self.lacks_8bitmime = request.body is Body.EIGHT_BIT_MIME and not caps.has_8bitmime
        self.is_pipelined = caps.has_pipelining
        self.is_chunked = caps.has_chunking and (use_chunking or request.body is Body.BINARY_MIME)
        self.phase = Phase.ENVELOPE
        self._outstanding = 0  # our commands not yet answered
        self._mail_reply: Reply | None = None
        self._rcpt_replies: list[Reply] = []
        self._final: dict[int, Reply] = {}
        self._bdat_failure: Reply | None = None
        self._is_started = False

    # ---- state ----------------------------------------------------------------------------------

    @property
    def is_done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def is_waiting(self) -> bool:
        """Replies to this transaction's commands are outstanding."""
        return self._outstanding > 0

    @property
    def results(self) -> tuple[RecipientResult, ...]:
        if not self.is_done:
            raise LocalProtocolError("the transaction is not done")
        return tuple(
            RecipientResult(address=r.address, outcome=_outcome(self._final[i]), reply=self._final[i])
            for i, r in enumerate(self.request.recipients)
        )

    def _accepted(self) -> list[int]:
        return [i for i, reply in enumerate(self._rcpt_replies) if reply.code < 300]

    def _send(self, data: bytes) -> bytes:
        self._outstanding += 1
        return data

    def _rcpt(self, index: int) -> bytes:
        recipient = self.request.recipients[index]
        return self._send(self.connection.rcpt(recipient.address, notify=recipient.notify, orcpt=recipient.orcpt))

    # ---- driving --------------------------------------------------------------------------------

    def start(self) -> bytes:
        if self._is_started:
            raise LocalProtocolError("transaction already started")
        self._is_started = True
        if self.refusal is not None:
            self._settle(range(len(self.request.recipients)), self.refusal)
            self.phase = Phase.DONE
            return b""
        request = self.request
        out = self._send(
            self.connection.mail(
                request.mail_from,
                size=request.size,
                body=request.body,
                is_smtputf8=request.is_smtputf8,
                ret=request.ret,
                envid=request.envid,
            )
        )
        if self.is_pipelined:  # RFC 2920 §3.1: MAIL, RCPTs and DATA as one group, DATA last
            out += b"".join(self._rcpt(index) for index in range(len(request.recipients)))
            if not self.is_chunked:
                out += self._send(self.connection.data())
        return out

    def receive(self, event: Replied) -> bytes:
        """Take the reply to one of our commands; return the bytes to write next (maybe none)."""
        if self.is_done or self._outstanding == 0:
            raise LocalProtocolError(f"the transaction expects no reply to {event.command.name}")
        self._outstanding -= 1
        reply = event.reply
        if reply.code == 421:  # RFC 5321 §3.8: the server is closing; nothing more will be answered
            self.fail(reply)
            return b""
        out = b""
        match event.command:
            case Command.MAIL:
                self._mail_reply = reply
                if not self.is_pipelined and reply.code >= 300:
                    self._settle(range(len(self.request.recipients)), reply)
                elif not self.is_pipelined:
                    out = self._rcpt(0)
            case Command.RCPT:
                mail = self._mail_reply
                # RFC 2920 §3.1: after a failed MAIL, every RCPT fails for that reason
                self._rcpt_replies.append(mail if mail is not None and mail.code >= 300 else reply)
                index = len(self._rcpt_replies)
                if index < len(self.request.recipients):
                    out = b"" if self.is_pipelined else self._rcpt(index)
                else:
                    out = self._after_envelope()
            case Command.DATA:
                accepted = self._accepted()
                if reply.code == 354 and accepted:
                    self.phase = Phase.CONTENT
                elif reply.code == 354:  # RFC 2920 §3.1: DATA accepted without recipients: send a lone dot
                    out = self._send(self.connection.end_content())
                    self.phase = Phase.FINAL
                else:
                    self._settle(accepted, reply if reply.code >= 400 else protocol_error("DATA not answered 354"))
                    out = self._close_envelope()
            case Command.CONTENT:
                self._settle(self._accepted(), reply)
            case Command.BDAT:
                if reply.code >= 300 and self._bdat_failure is None:
                    self._bdat_failure = reply  # RFC 3030 §2: a failed chunk fails the transaction
                if self.phase is Phase.FINAL and self._outstanding == 0:
                    self._settle(self._accepted(), self._bdat_failure or reply)
            case _:
                pass
        if len(self._final) == len(self.request.recipients) and self._outstanding == 0:
            self.phase = Phase.DONE
        return out

    def _after_envelope(self) -> bytes:
        """All RCPT replies are in: settle the refused, go on to the content, or end the transaction."""
        accepted = self._accepted()
        self._settle([i for i in range(len(self.request.recipients)) if i not in accepted], None)
        if self.is_pipelined and not self.is_chunked:
            return b""  # the DATA reply decides (RFC 2920 §3.1: check it, whatever the RCPTs got)
        if not accepted:
            return self._close_envelope()
        if self.is_chunked:
            self.phase = Phase.CONTENT
            return b""
        return self._send(self.connection.data())

    def _close_envelope(self) -> bytes:
        """No content will follow: RSET a transaction the server holds open (RFC 2920 §3.1)."""
        mail = self._mail_reply
        self.phase = Phase.FINAL
        if mail is not None and mail.code < 300:
            return self._send(self.connection.rset())
        return b""

    def _settle(self, indexes: Sequence[int], reply: Reply | None) -> None:
        for index in indexes:
            if index not in self._final:
                self._final[index] = reply if reply is not None else self._rcpt_replies[index]

    def content(self, chunk: bytes) -> bytes:
        if self.phase is not Phase.CONTENT:
            raise LocalProtocolError(f"no content expected in phase {self.phase.name}")
        if not self.is_chunked:
            return self.connection.send_content(chunk)
        if not chunk or self._bdat_failure is not None:  # RFC 3030 §2: no more chunks after a failure
            return b""
        return self._send(self.connection.bdat(chunk, is_last=False))

    def end_content(self) -> bytes:
        if self.phase is not Phase.CONTENT:
            raise LocalProtocolError(f"no content expected in phase {self.phase.name}")
        self.phase = Phase.FINAL
        if not self.is_chunked:
            return self._send(self.connection.end_content())
        if self._bdat_failure is not None:
            if self._outstanding == 0:
                self._settle(self._accepted(), self._bdat_failure)
                self.phase = Phase.DONE
            return b""
        return self._send(self.connection.bdat(b"", is_last=True))  # RFC 3030 §2: "BDAT 0 LAST" is allowed

    def fail(self, reply: Reply) -> None:
        """The connection failed: every recipient without a final answer gets ``reply`` (make it a 4xx)."""
        self._settle([i for i, rcpt in enumerate(self._rcpt_replies) if rcpt.code >= 300], None)
        self._settle(range(len(self.request.recipients)), reply)
        self._outstanding = 0
        self.phase = Phase.DONE
