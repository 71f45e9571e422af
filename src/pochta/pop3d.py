"""One POP3 connection: drives the sans-IO core (proto.pop3) over a net.Stream, on the same store as IMAP.

The maildrop is the account's INBOX as it was at login (RFC 1939 §4: a snapshot in UID order). DELE only
marks; QUIT in TRANSACTION state removes the marked messages in one store call (the UPDATE state,
RFC 1939 §6), which IMAP sessions see as any other expunge. A dropped connection deletes nothing.
Messages are streamed from their blobs in ranges and byte-stuffed on the way; none is held whole.

Exclusive access (RFC 1939 §8) is a lock per account in this process: a second POP3 session of the same
account on this node gets ``-ERR [IN-USE]``. Sessions on other nodes of a cluster are not seen.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pochta.accounts import check_password, login_account, scram_credentials
from pochta.config import Config
from pochta.mail.mime import ParsedMessage
from pochta.net import Handler, IdleTimeout, ShutdownRequested, Stream
from pochta.proto import sasl
from pochta.proto.pop3 import (
    Auth,
    AuthCancelled,
    AuthResponse,
    Capa,
    Code,
    ConnectionClosed,
    Continuation,
    Dele,
    Event,
    InvalidCommand,
    Limits,
    List,
    NeedData,
    Noop,
    Pass,
    Paused,
    Quit,
    Reply,
    Retr,
    Rset,
    ServerConnection,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
    error,
    ok,
)
from pochta.store.api import INBOX, Account, Blobs, NotFound, Store, StoreError

log = logging.getLogger(__name__)
trace = logging.getLogger("pochta.trace.pop3")

AUTH_FAILURE_DELAY = 1.0  # seconds before a failed login is answered: slows password guessing
CHUNK_SIZE = 128 * 1024  # octets of a blob read and sent at a time
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class MaildropLocks:
    """The accounts whose maildrop a POP3 session holds, in this process (RFC 1939 §8)."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def acquire(self, account_id: int) -> bool:
        if account_id in self._held:
            return False
        self._held.add(account_id)
        return True

    def release(self, account_id: int) -> None:
        self._held.discard(account_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    hostname: str
    tls: ssl.SSLContext | None  # offered with STLS when the stream is not TLS already
    locks: MaildropLocks
    limits: Limits = field(default_factory=Limits)
    auth_failure_delay: float = AUTH_FAILURE_DELAY


def handlers(
    *,
    store: Store,
    blobs: Blobs,
    config: Config,
    tls: ssl.SSLContext | None,
    auth_failure_delay: float = AUTH_FAILURE_DELAY,
) -> dict[str, Handler]:
    """The ``pop3`` (STLS offered when ``tls`` is given) and ``pop3s`` (stream already TLS) handlers;
    both share one maildrop lock table."""
    settings = SessionSettings(
        hostname=config.hostname, tls=tls, locks=MaildropLocks(), auth_failure_delay=auth_failure_delay
    )

    async def pop3(stream: Stream) -> None:
        await Session(stream, settings=settings, store=store, blobs=blobs).run()

    return {"pop3": pop3, "pop3s": pop3}


@dataclass(slots=True, kw_only=True)
class _Entry:
    uid: int
    size: int
    blob_id: str
    is_deleted: bool = False


@dataclass(slots=True, kw_only=True)
class Maildrop:
    """The INBOX snapshot of one session; message numbers count from 1 (RFC 1939 §5)."""

    account: Account
    mailbox_id: int
    uidvalidity: int
    entries: list[_Entry]

    def entry(self, msg: int) -> _Entry:
        if not 1 <= msg <= len(self.entries):
            raise _Refused(error("no such message"))
        entry = self.entries[msg - 1]
        if entry.is_deleted:
            raise _Refused(error(f"message {msg} already deleted"))  # RFC 1939 §5
        return entry

    def live(self) -> list[tuple[int, _Entry]]:
        return [(msg, entry) for msg, entry in enumerate(self.entries, 1) if not entry.is_deleted]

    def unique_id(self, entry: _Entry) -> str:
        """Stable across sessions and never reused: a UID is never reused within its UIDVALIDITY."""
        return f"{self.uidvalidity}.{entry.uid}"  # RFC 1939 §7: 1 to 70 characters 0x21-0x7E

    def stat(self) -> tuple[int, int]:
        live = self.live()
        return len(live), sum(entry.size for _, entry in live)

    def deleted_uids(self) -> list[int]:
        return [entry.uid for entry in self.entries if entry.is_deleted]


class _Refused(Exception):
    """Deep code's way to answer the pending command with -ERR."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def _store_error_reply(exc: StoreError) -> Reply:
    """The one place store failures become POP3 replies (RFC 3206 §4)."""
    if isinstance(exc, NotFound):
        return error("message is no longer available", code=Code.SYS_TEMP)
    return error("temporary server error, try again later", code=Code.SYS_TEMP)


class Session:
    def __init__(self, stream: Stream, *, settings: SessionSettings, store: Store, blobs: Blobs) -> None:
        self.stream = stream
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.conn = ServerConnection(
            limits=settings.limits,
            is_tls=stream.is_tls,
            is_loopback=stream.is_loopback,
            is_stls_offered=settings.tls is not None and not stream.is_tls,
        )
        self.maildrop: Maildrop | None = None
        self.retrieved = 0
        self.deleted = 0
        self._sasl: sasl.Mechanism | None = None
        self._sasl_account: Account | None = None
        self._sasl_succeeded = False  # SCRAM's server-final sent; waiting for the empty response

    # ---- I/O --------------------------------------------------------------------------------------

    def _write(self, reply: Reply | Continuation) -> None:
        data = self.conn.send(reply)
        if trace.isEnabledFor(logging.DEBUG):
            first = data.split(b"\r\n", 1)[0]
            trace.debug("S: %s", first.decode(errors="replace"))
        self.stream.write(data)

    async def _feed(self) -> None:
        # Any command boundary may be interrupted by a shutdown: leaving deletes nothing (RFC 1939 §6).
        self.conn.receive_data(await self.stream.read(interruptible=True))

    # ---- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        stream = self.stream
        peer = stream.peer_host
        log.info("pop3 connect peer=%s port=%d tls=%s", peer, stream.local_port, stream.is_tls)
        self._write(ok(f"{self.settings.hostname} POP3 server ready"))  # no APOP timestamp: APOP is not offered
        try:
            await self._loop()
        except IdleTimeout:
            pass  # RFC 1939 §3: the autologout closes without a response and without UPDATE
        except ShutdownRequested:
            self.stream.write(self.conn.close(error("server shutting down, try again later", code=Code.SYS_TEMP)))
        except ConnectionError:
            pass
        except Exception:
            log.exception("pop3 session failed peer=%s", peer)
            if not self.conn.is_body_open:
                self.stream.write(self.conn.close(error("local error, closing connection", code=Code.SYS_TEMP)))
        finally:
            user = self.maildrop.account.address if self.maildrop else "-"
            if self.maildrop is not None:
                self.settings.locks.release(self.maildrop.account.id)
            log.info(
                "pop3 disconnect peer=%s user=%s retrieved=%d deleted=%d", peer, user, self.retrieved, self.deleted
            )

    async def _loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            match event:
                case NeedData():
                    await self.stream.drain()
                    await self._feed()
                    continue
                case ConnectionClosed():
                    await self.stream.drain()
                    return
                case Paused():  # pragma: no cover - every event below is answered before the next
                    raise AssertionError("POP3 core paused with no reply owed")
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug("C: %s", _describe(event))
            try:
                await self._dispatch(event)
            except _Refused as refused:
                self._write(refused.reply)
            except StoreError as exc:
                if not conn.is_reply_due:
                    raise
                log.warning("pop3 store error peer=%s: %s", self.stream.peer_host, exc)
                self._write(_store_error_reply(exc))

    async def _dispatch(self, event: Event) -> None:
        conn = self.conn
        match event:
            case Capa():
                self._write(conn.capa_reply())
            case User():
                self._write(ok("send PASS"))  # the same for every name: user names cannot be probed
            case Pass(user=user, password=password):
                account = await check_password(self.store, user, password)
                self._write(await self._login(account, name=user))
            case Auth():
                await self._auth(event)
            case AuthResponse(data=data):
                await self._auth_response(data)
            case AuthCancelled():
                self._end_sasl()
                self._write(error("authentication cancelled"))
            case Stls():
                await self._stls()
            case Utf8():
                self._write(ok("UTF-8 mode enabled"))  # RFC 6856 §2
            case Stat():
                count, size = self._maildrop().stat()
                self._write(ok(f"{count} {size}"))  # RFC 1939 §5: drop listing
            case List(msg=None):
                maildrop = self._maildrop()
                count, size = maildrop.stat()
                lines = tuple(f"{msg} {entry.size}" for msg, entry in maildrop.live())
                self._write(ok(f"{count} messages ({size} octets)", lines=lines))
            case List(msg=msg) if msg is not None:
                self._write(ok(f"{msg} {self._maildrop().entry(msg).size}"))  # scan listing
            case Uidl(msg=None):
                maildrop = self._maildrop()
                lines = tuple(f"{msg} {maildrop.unique_id(entry)}" for msg, entry in maildrop.live())
                self._write(ok("unique-id listing follows", lines=lines))
            case Uidl(msg=msg) if msg is not None:
                maildrop = self._maildrop()
                self._write(ok(f"{msg} {maildrop.unique_id(maildrop.entry(msg))}"))
            case Retr(msg=msg):
                entry = self._maildrop().entry(msg)
                await self._send_message(entry, self._chunks(entry.blob_id, 0, entry.size), f"{entry.size} octets")
                self.retrieved += 1
            case Top(msg=msg, lines=lines):
                entry = self._maildrop().entry(msg)
                await self._send_message(entry, self._top_chunks(entry, lines), "top of message follows")
            case Dele(msg=msg):
                self._maildrop().entry(msg).is_deleted = True
                self._write(ok(f"message {msg} deleted"))
            case Noop():
                self._write(ok())
            case Rset():
                maildrop = self._maildrop()
                for entry in maildrop.entries:
                    entry.is_deleted = False  # RFC 1939 §5
                count, size = maildrop.stat()
                self._write(ok(f"maildrop has {count} messages ({size} octets)"))
            case Quit():
                await self._quit()
            case InvalidCommand(reply=reply):
                self._write(reply)
            case _:  # pragma: no cover - NeedData, Paused and ConnectionClosed are handled by the loop
                raise AssertionError(f"unexpected event {event!r}")

    # ---- authorization ----------------------------------------------------------------------------

    async def _login(self, account: Account | None, *, name: str) -> Reply:
        """The answer to a finished PASS or AUTH: open the maildrop, or refuse after the delay."""
        if account is None:
            log.info("pop3 login failed peer=%s user=%s", self.stream.peer_host, name)
            await asyncio.sleep(self.settings.auth_failure_delay)
            return error("invalid user name or password", code=Code.AUTH)  # RFC 3206 §5
        locks = self.settings.locks
        if not locks.acquire(account.id):
            return error("maildrop is in use by another POP3 session", code=Code.IN_USE)  # RFC 2449 §8.1.1
        try:
            mailbox = await self.store.get_mailbox(account.id, INBOX)
            if mailbox is None:
                raise NotFound(f"account {account.id} has no INBOX")
            messages = await self.store.messages(mailbox.id)
        except StoreError as exc:
            locks.release(account.id)
            log.warning("pop3 cannot open maildrop user=%s: %s", account.address, exc)
            return error("cannot open the maildrop, try again later", code=Code.SYS_TEMP)
        except BaseException:
            locks.release(account.id)
            raise
        self.maildrop = Maildrop(
            account=account,
            mailbox_id=mailbox.id,
            uidvalidity=mailbox.uidvalidity,
            entries=[_Entry(uid=m.uid, size=m.size, blob_id=m.blob_id) for m in messages],
        )
        count, size = self.maildrop.stat()
        log.info("pop3 login peer=%s user=%s messages=%d", self.stream.peer_host, account.address, count)
        return ok(f"maildrop has {count} messages ({size} octets)")

    async def _auth(self, event: Auth) -> None:
        mechanism = sasl.new_mechanism(event.mechanism)
        if mechanism is None:  # pragma: no cover - the core offers only mechanisms sasl knows
            raise _Refused(error("unknown SASL mechanism"))
        self._sasl = mechanism
        await self._sasl_step(mechanism.start(event.initial_response))

    async def _auth_response(self, data: bytes) -> None:
        mechanism = self._sasl
        assert mechanism is not None  # the core reads responses only after a challenge
        if self._sasl_succeeded:  # RFC 5034 §4: the client acknowledges SCRAM's server-final message
            account = self._sasl_account
            self._end_sasl()
            if data:
                raise _Refused(error("expected an empty response"))
            self._write(await self._login(account, name=account.address if account else "-"))
            return
        await self._sasl_step(mechanism.respond(data))

    async def _sasl_step(self, step: sasl.Step) -> None:
        mechanism = self._sasl
        assert mechanism is not None
        while True:
            match step:
                case sasl.Challenge(data=data):
                    self._write(Continuation(data=data))
                    return
                case sasl.NeedCredentials(authcid=authcid):
                    assert isinstance(mechanism, sasl.ScramSha256)
                    self._sasl_account = account = await login_account(self.store, authcid)
                    step = mechanism.credentials(scram_credentials(account))
                case sasl.CheckPassword(authcid=authcid, password=password):
                    self._end_sasl()
                    account = await check_password(self.store, authcid, password)
                    self._write(await self._login(account, name=authcid))
                    return
                case sasl.Success(authcid=authcid, data=data):
                    if data:  # RFC 5034 §4: additional data goes out as one more challenge
                        self._sasl_succeeded = True
                        self._write(Continuation(data=data))
                        return
                    account = self._sasl_account
                    self._end_sasl()
                    self._write(await self._login(account, name=authcid))
                    return
                case sasl.Failure(reason=reason, is_malformed=is_malformed):
                    self._end_sasl()
                    if is_malformed:
                        raise _Refused(error(f"authentication failed: {reason}"))
                    log.info("pop3 login failed peer=%s reason=%s", self.stream.peer_host, reason)
                    await asyncio.sleep(self.settings.auth_failure_delay)
                    raise _Refused(error("authentication failed", code=Code.AUTH))  # RFC 3206 §5

    def _end_sasl(self) -> None:
        self._sasl = None
        self._sasl_account = None
        self._sasl_succeeded = False

    async def _stls(self) -> None:
        context = self.settings.tls
        assert context is not None  # the core offers STLS only with a context
        self._write(ok("begin TLS negotiation"))
        discarded = await self.stream.start_tls(context)
        if discarded:
            log.warning("pop3 peer=%s pipelined %d octets after STLS; discarded", self.stream.peer_host, discarded)
        self.conn.tls_established()

    # ---- transaction ------------------------------------------------------------------------------

    def _maildrop(self) -> Maildrop:
        maildrop = self.maildrop
        assert maildrop is not None  # the core accepts these commands only in TRANSACTION state
        return maildrop

    async def _send_message(self, entry: _Entry, chunks: AsyncIterator[bytes], text: str) -> None:
        """+OK and the byte-stuffed body; the first chunk is read before the +OK so a missing blob
        gets -ERR, not a broken body."""
        first = await anext(chunks, b"")
        self._write(ok(text))
        stream, conn = self.stream, self.conn
        stream.write(conn.send_body(first))
        async for chunk in chunks:
            await stream.drain()
            stream.write(conn.send_body(chunk))
        stream.write(conn.end_body())

    async def _chunks(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        offset = start
        while offset < end:
            chunk = await self.blobs.read(blob_id, offset, min(end, offset + CHUNK_SIZE))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def _top_chunks(self, entry: _Entry, lines: int) -> AsyncIterator[bytes]:
        """The header block with its blank line, then ``lines`` lines of the body (RFC 1939 §7)."""
        body_start = await self._body_start(entry)
        async for chunk in self._chunks(entry.blob_id, 0, body_start):
            yield chunk
        remaining = lines
        if remaining == 0:
            return
        async for chunk in self._chunks(entry.blob_id, body_start, entry.size):
            count = chunk.count(b"\n")
            if count < remaining:
                remaining -= count
                yield chunk
                continue
            end = -1
            for _ in range(remaining):
                end = chunk.index(b"\n", end + 1)
            yield chunk[: end + 1]
            return

    async def _body_start(self, entry: _Entry) -> int:
        """Where the body begins: from the parse stored at delivery, else by scanning for the blank line."""
        found = await self.store.messages(self._maildrop().mailbox_id, uids=[entry.uid], with_structure=True)
        if found and found[0].structure:
            try:
                return ParsedMessage.loads(found[0].structure).root.body_start
            except ValueError:
                pass
        tail = b"\n"  # a message that starts with a blank line has no header at all
        offset = 0
        async for chunk in self._chunks(entry.blob_id, 0, entry.size):
            data = tail + chunk
            match = _BLANK_LINE.search(data)
            if match:
                return offset - len(tail) + match.end()
            tail = data[-3:]
            offset += len(chunk)
        return entry.size

    async def _quit(self) -> None:
        maildrop = self.maildrop
        if maildrop is None:  # AUTHORIZATION state: nothing to update (RFC 1939 §4)
            self._write(ok(f"{self.settings.hostname} POP3 server signing off"))
            return
        uids = maildrop.deleted_uids()  # RFC 1939 §6: the UPDATE state
        if uids:
            try:
                removed = await self.store.expunge(maildrop.mailbox_id, uids)
            except StoreError as exc:
                log.warning("pop3 expunge failed user=%s: %s", maildrop.account.address, exc)
                self._write(error("some deleted messages not removed", code=Code.SYS_TEMP))
                return
            self.deleted = len(removed)
        count, _ = maildrop.stat()
        self._write(ok(f"{self.settings.hostname} POP3 server signing off ({count} messages left)"))


def _describe(event: Event) -> str:
    """An event for the transcript log, with passwords and SASL payloads hidden."""
    match event:
        case Pass():
            return "PASS ***"
        case Auth(mechanism=mechanism, initial_response=initial):
            return f"AUTH {mechanism}" + (" ***" if initial is not None else "")
        case AuthResponse():
            return "***"
        case _:
            return repr(event)
