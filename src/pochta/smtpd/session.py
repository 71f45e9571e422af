"""One SMTP connection: drives the sans-IO core (proto.smtp) over a net.Stream.

The session owns the I/O, the spool (a blob writer the content streams into) and the trace headers;
a Policy (MX here, submission later) decides what each sender and recipient gets and delivers the
message. One readable loop, one place that turns our failures into replies.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import mmap
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol

from pochta.accounts import Resolution
from pochta.delivery import LocalCopy
from pochta.filters.pipeline import Inbound
from pochta.mail.address import quote_local
from pochta.mail.envelope import Envelope, Recipient
from pochta.net import IdleTimeout, ShutdownRequested, Stream
from pochta.proto.smtp import (
    Auth,
    AuthCancelled,
    AuthResponse,
    Bdat,
    BdatEnd,
    ConnectionClosed,
    Data,
    DataChunk,
    DataEnd,
    Ehlo,
    Expn,
    Extensions,
    Help,
    InvalidCommand,
    Limits,
    MailFrom,
    NeedData,
    Noop,
    Paused,
    Quit,
    RcptTo,
    Reply,
    Rset,
    ServerConnection,
    StartTls,
    State,
    Vrfy,
    replies,
)
from pochta.smtpd.auth import SmtpAuth
from pochta.store.api import Account, Blobs, BlobWriter

log = logging.getLogger(__name__)
trace = logging.getLogger("pochta.trace.smtp")

IDLE = Reply(code=421, status="4.4.2", text="idle too long, closing connection")  # RFC 5321 §4.5.3.2.7
SHUTTING_DOWN = Reply(code=421, status="4.3.2", text="service shutting down, try again later")
LOCAL_ERROR = Reply(code=451, status="4.3.0", text="local error, try again later")  # RFC 3463 X.3.0
AUTH_NOT_AVAILABLE = Reply(code=502, status="5.5.1", text="AUTH not available here")


def mailbox_full(shown: str = "") -> Reply:
    """452 4.2.2 (RFC 3463 X.2.2): temporary, the sender retries once there is room."""
    text = "mailbox full, try again later"
    return Reply(code=452, status="4.2.2", text=f"{shown}: {text}" if shown else text)


@dataclass(slots=True, kw_only=True)
class Transaction:
    """What a MAIL ... DATA exchange has gathered so far."""

    id: str
    mail: MailFrom
    recipients: list[Recipient] = field(default_factory=list)
    copies: dict[int, LocalCopy] = field(default_factory=dict)  # account id → its copy's recipients
    remote: list[Recipient] = field(default_factory=list)  # for the outbound queue (submission)
    spool: BlobWriter | None = None
    trace_length: int = 0  # octets of Return-Path/Received at the top of the spool; checks' headers go after
    started: datetime

    def is_over_quota(self, resolution: Resolution) -> bool:
        """Whether an account the recipient leads to is full already (or would be, by the SIZE given)."""
        expected = self.mail.size or 0
        return any(a.quota_bytes and a.used_bytes + expected >= a.quota_bytes for a in resolution.accounts)

    def add_recipient(self, event: RcptTo, resolution: Resolution) -> None:
        """Count an accepted RCPT: a copy for each account it reaches, the queue for the rest."""
        recipient = Recipient(
            address=str(event.path),
            notify=tuple(sorted(n.value for n in event.notify)) if event.notify else (),
            orcpt=f"{event.orcpt.addr_type};{event.orcpt.address}" if event.orcpt else None,
        )
        self.recipients.append(recipient)
        for account in resolution.accounts:
            copy = self.copies.get(account.id)
            recipients = (*copy.recipients, recipient) if copy else (recipient,)
            self.copies[account.id] = LocalCopy(account=account, recipients=recipients)
        # Remote recipients, and a local alias's external targets (forwarded with the original sender;
        # SRS, which would keep SPF passing at the target, is not done yet).
        for forward in resolution.forwards:
            self.remote.append(recipient if forward == event.path else Recipient(address=str(forward)))

    def envelope(self) -> Envelope:
        mail = self.mail
        return Envelope(
            mail_from=str(mail.path) if mail.path else "",
            recipients=tuple(self.recipients),
            body=mail.body.value if mail.body else None,
            is_smtputf8=mail.is_smtputf8,
            ret=mail.ret.value if mail.ret else None,
            envid=mail.envid,
        )


def inbound(session: Session, transaction: Transaction, content: bytes | mmap.mmap) -> Inbound:
    """The message as the checks see it, with what the session knows of its sender."""
    account = session.authenticated_as
    return Inbound(
        id=transaction.id,
        content=content,
        envelope=transaction.envelope(),
        remote_ip=session.stream.peer_host,
        helo=session.conn.ehlo.name if session.conn.ehlo else "",
        is_tls=session.stream.is_tls,
        authenticated=account.address if account is not None else None,
        account_ids=tuple(transaction.copies),
    )


class Policy(Protocol):
    """What a kind of SMTP service (MX, submission) allows; the session calls it at each step."""

    extensions: Extensions
    adds_return_path: bool  # the final delivery adds Return-Path (RFC 5321 §4.4); mail going out must not carry it

    async def mail_from(self, session: Session, event: MailFrom) -> Reply: ...
    async def rcpt_to(self, session: Session, transaction: Transaction, event: RcptTo) -> Reply: ...
    async def deliver(self, session: Session, transaction: Transaction, size: int) -> Reply:
        """The content is complete in `transaction.spool` (not yet committed): make it durable
        for every recipient and answer; 250 only once it is."""
        ...


def transaction_ids() -> Callable[[], str]:
    """A source of transaction ids: 12 hex digits counting up from a random start, so unique in the
    process (for 2**48 ids) and unrelated to the ids before a restart.

    Not secrets.token_hex per transaction: os.urandom releases the GIL, and winning it back from the
    store's threads cost about 30 µs per message under bench/smtp_in.sh's load. The id names the
    transaction in logs, the 250 reply and the Received field; it was never a secret."""
    counter = itertools.count(int.from_bytes(os.urandom(6)))
    return lambda: f"{next(counter) & 0xFFFF_FFFF_FFFF:012x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    hostname: str
    limits: Limits
    tls: ssl.SSLContext | None  # offered with STARTTLS when the stream is not TLS already
    new_id: Callable[[], str] = field(default_factory=transaction_ids)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class Session:
    def __init__(
        self, stream: Stream, *, settings: SessionSettings, policy: Policy, blobs: Blobs, auth: SmtpAuth | None = None
    ) -> None:
        self.stream = stream
        self.auth = auth  # None: this service offers no AUTH (the MX)
        self.settings = settings
        self.policy = policy
        self.blobs = blobs
        extensions = policy.extensions
        if settings.tls is not None and not stream.is_tls:
            extensions = _with_starttls(extensions)
        self.conn = ServerConnection(
            hostname=settings.hostname, limits=settings.limits, extensions=extensions, is_tls=stream.is_tls
        )
        self.transaction: Transaction | None = None
        self.authenticated_as: Account | None = None
        self.messages = 0

    # ---- I/O --------------------------------------------------------------------------------------

    def _write(self, reply: Reply) -> None:
        data = self.conn.send(reply)
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("S: %s", data.decode(errors="replace").rstrip())
        self.stream.write(data)

    async def _feed(self) -> None:
        # Only between transactions may a shutdown interrupt the wait (net.Stream.read).
        idle = self.conn.state in (State.GREETED, State.READY) and self.transaction is None
        data = await self.stream.read(interruptible=idle)
        if trace.isEnabledFor(logging.DEBUG) and self.conn.state not in (State.DATA, State.BDAT):
            trace.debug("C: %s", data.decode(errors="replace").rstrip())
        self.conn.receive_data(data)

    # ---- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        stream = self.stream
        peer = stream.peer_host
        log.info("smtp connect peer=%s port=%d tls=%s", peer, stream.local_port, stream.is_tls)
        self._write(Reply(code=220, text=f"{self.settings.hostname} ESMTP Pochta"))
        try:
            await self._loop()
        except IdleTimeout:
            self._close_with(IDLE)
        except ShutdownRequested:
            self._close_with(SHUTTING_DOWN)
        except ConnectionError:
            pass
        finally:
            self._drop_transaction()
            log.info("smtp disconnect peer=%s messages=%d", peer, self.messages)

    def _close_with(self, reply: Reply) -> None:
        if self.conn.state is not State.CLOSED:
            self.stream.write(self.conn.send(reply) if self.conn.state is not State.TLS else reply.to_bytes())

    async def _loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            match event:
                case NeedData():
                    await self.stream.drain()
                    await self._feed()
                case ConnectionClosed():
                    await self.stream.drain()
                    return
                case Paused():  # pragma: no cover - every event below is answered before the next
                    raise AssertionError("SMTP core paused with no reply owed")
                case Ehlo():
                    self._drop_transaction()
                    self._write(conn.ehlo_reply())
                case MailFrom():
                    await self._mail_from(event)
                case RcptTo():
                    await self._rcpt_to(event)
                case Data() | Bdat():
                    self._open_spool(event)
                case DataChunk(data=data):
                    if self.transaction is not None and self.transaction.spool is not None:
                        self.transaction.spool.write(data)
                case DataEnd():
                    self._write(await self._data_end(event))
                case BdatEnd():
                    self._write(await self._bdat_end(event))
                case StartTls():
                    await self._start_tls()
                case Auth() | AuthResponse() | AuthCancelled():
                    self._write(await self._authenticate(event))
                case Rset():
                    self._drop_transaction()
                    self._write(replies.OK)
                case Noop():
                    self._write(replies.OK)
                case Help():
                    self._write(replies.HELP)
                case Vrfy():
                    self._write(replies.VRFY_CANNOT)
                case Expn():
                    self._write(replies.EXPN_DISABLED)
                case Quit():
                    self._write(Reply(code=221, status="2.0.0", text=f"{self.settings.hostname} closing"))
                case InvalidCommand(reply=reply):
                    if reply.code == 421:
                        log.warning("smtp closing peer=%s reason=%s", self.stream.peer_host, reply.text)
                    self._write(reply)

    # ---- steps ------------------------------------------------------------------------------------

    async def _mail_from(self, event: MailFrom) -> None:
        reply = await self._guarded(self.policy.mail_from(self, event))
        if reply.is_positive:
            self.transaction = Transaction(id=self.settings.new_id(), mail=event, started=self.settings.now())
        self._write(reply)

    async def _rcpt_to(self, event: RcptTo) -> None:
        transaction = self.transaction
        assert transaction is not None  # the core refuses RCPT outside a transaction
        self._write(await self._guarded(self.policy.rcpt_to(self, transaction, event)))

    def _open_spool(self, event: Data | Bdat) -> None:
        transaction = self.transaction
        assert transaction is not None
        if transaction.spool is None:
            transaction.spool = self.blobs.create()
            trace = self._trace_headers(transaction)
            transaction.trace_length = len(trace)
            transaction.spool.write(trace)
        if isinstance(event, Data):
            self._write(replies.DATA_GO_AHEAD)

    async def _data_end(self, event: DataEnd) -> Reply:
        if event.has_bare_line_ending:
            reply = replies.BARE_LINE_ENDING  # RFC 5321 §2.3.8; SMTP smuggling cannot start here
        elif event.is_too_large:
            reply = replies.MESSAGE_TOO_BIG
        elif event.is_header_too_large:
            reply = replies.HEADER_TOO_BIG
        else:
            return await self._deliver(event.size)
        self._drop_transaction(reason=reply.text)
        return reply

    async def _bdat_end(self, event: BdatEnd) -> Reply:
        if event.is_too_large:
            self._drop_transaction(reason="too large")
            return replies.MESSAGE_TOO_BIG
        if event.is_header_too_large:
            self._drop_transaction(reason="header too large")
            return replies.HEADER_TOO_BIG
        if not event.is_last:
            return Reply(code=250, status="2.0.0", text=f"{event.size} octets received")
        return await self._deliver(event.total_size)

    async def _deliver(self, size: int) -> Reply:
        transaction = self.transaction
        assert transaction is not None and transaction.spool is not None
        reply = await self._guarded(self.policy.deliver(self, transaction, size))
        if reply.is_positive:
            self.messages += 1
            transaction.spool = None  # committed: nothing to abort
        self._drop_transaction(reason=None if reply.is_positive else reply.text)
        return reply

    async def _authenticate(self, event: Auth | AuthResponse | AuthCancelled) -> Reply:
        auth = self.auth
        if auth is None:
            return AUTH_NOT_AVAILABLE
        peer = self.stream.peer_host
        match event:
            case Auth(mechanism=mechanism, initial_response=initial):
                reply = await auth.start(mechanism, initial, peer=peer)
            case AuthResponse(data=data):
                reply = await auth.respond(data, peer=peer)
            case AuthCancelled():
                reply = auth.cancel()
        if reply.code == 235:
            self.authenticated_as = auth.account
        return reply

    async def _start_tls(self) -> None:
        context = self.settings.tls
        if context is None or self.stream.is_tls:
            self._write(replies.TLS_NOT_AVAILABLE)
            return
        self._write(replies.READY_FOR_TLS)
        discarded = await self.stream.start_tls(context)
        if discarded:
            log.warning("smtp peer=%s pipelined %d octets after STARTTLS; discarded", self.stream.peer_host, discarded)
        self._drop_transaction()
        self.conn.tls_established()

    # ---- helpers ----------------------------------------------------------------------------------

    async def _guarded(self, step: Awaitable[Reply]) -> Reply:
        """Run a policy step; our own failure becomes 451 so the peer retries, never a lost message."""
        try:
            return await step
        except Exception:
            log.exception("smtp step failed peer=%s", self.stream.peer_host)
            return LOCAL_ERROR

    def _drop_transaction(self, *, reason: str | tuple[str, ...] | None = None) -> None:
        transaction = self.transaction
        if transaction is None:
            return
        self.transaction = None
        if transaction.spool is not None:
            transaction.spool.abort()
        if reason is not None:
            log.info("smtp refused id=%s peer=%s reason=%s", transaction.id, self.stream.peer_host, reason)

    def _trace_headers(self, transaction: Transaction) -> bytes:
        """Return-Path and Received (RFC 5321 §4.4), prepended to the content as it is spooled."""
        mail = transaction.mail
        stream = self.stream
        helo = self.conn.ehlo.name if self.conn.ehlo else "unknown"
        protocol = _protocol_name(
            is_extended=bool(self.conn.ehlo and self.conn.ehlo.is_extended),
            is_utf8=mail.is_smtputf8,
            is_tls=stream.is_tls,
            is_authenticated=self.authenticated_as is not None,
        )
        tls = stream.tls_info
        tls_comment = f"\r\n\t(using {tls.version} with cipher {tls.cipher} ({tls.bits} bits))" if tls else ""
        # RFC 5321 §4.4: "for" names the recipient only when there is one, so Bcc stays private
        recipients = f"\r\n\tfor <{transaction.recipients[0].address}>" if len(transaction.recipients) == 1 else ""
        reverse_path = f"<{_path_text(mail)}>"
        received = (
            f"Received: from {helo} ([{stream.peer_host}])\r\n"
            f"\tby {self.settings.hostname} (Pochta) with {protocol} id {transaction.id}{recipients}"
            f"{tls_comment};\r\n\t{_date_text(transaction.started.replace(microsecond=0))}\r\n"
        )
        return_path = f"Return-Path: {reverse_path}\r\n" if self.policy.adds_return_path else ""
        return f"{return_path}{received}".encode()


@functools.lru_cache(maxsize=8)
def _date_text(moment: datetime) -> str:
    """RFC 5322 date of a whole second: the same for every message of that second (2% of the event
    loop's time with one connection per message when formatted each time)."""
    return format_datetime(moment)


def _path_text(mail: MailFrom) -> str:
    if mail.path is None:
        return ""
    return f"{quote_local(mail.path.local)}@{mail.path.unicode_domain if mail.is_smtputf8 else mail.path.domain}"


def _protocol_name(*, is_extended: bool, is_utf8: bool, is_tls: bool, is_authenticated: bool) -> str:
    """The `with` keyword of RFC 3848 and RFC 6531 §3.7.3."""
    if not is_extended:
        return "SMTP"
    name = "UTF8SMTP" if is_utf8 else "ESMTP"
    return name + ("S" if is_tls else "") + ("A" if is_authenticated else "")


@functools.lru_cache(maxsize=8)
def _with_starttls(extensions: Extensions) -> Extensions:
    """Once per policy, not per connection (dataclasses.replace is about 3 µs)."""
    return dataclasses.replace(extensions, starttls=True)
