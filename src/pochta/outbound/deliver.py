"""One delivery attempt to a remote domain: try its mail hosts in order, speak SMTP with the client
core, and return one result per recipient.

Opportunistic STARTTLS (RFC 3207) whenever the remote offers it; unverified, since most MX
certificates do not match (MTA-STS, RFC 8461, will make it verified where a domain asks for that).
A host that cannot be reached, greets with anything but 220, or fails before giving an answer for
the recipients is skipped for the next one (RFC 5321 §5.1); definite answers end the attempt.

The answers go to `settle` as soon as the transaction has them, before QUIT: the caller records a
remote's 250 without first waiting for the goodbye (with TLS, a close_notify exchange of up to 5 s),
since a crash in that wait sends the message again.

With a :class:`ConnectionCache`, a clean connection is kept after its transaction instead of QUIT,
and the next message to the same host (under the same TLS and login requirements) starts with RSET
on it. A kept connection that turns out dead (EOF, a 421, no 250 to RSET) costs nothing but a new
connection: no content went out on it, so it is not a failure of the host.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pochta.net import IdleTimeout, Stream, connect
from pochta.outbound.connections import ConnectionCache, Session
from pochta.proto.smtp import ConnectionClosed, NeedData, Reply
from pochta.proto.smtp.client import (
    ClientConnection,
    MailRequest,
    MalformedReply,
    Outcome,
    Phase,
    RecipientResult,
    Replied,
    Transaction,
)

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
ReadContent = Callable[[int, int], Awaitable[bytes]]  # (start, end) → the message's octets
Settle = Callable[[tuple[RecipientResult, ...]], Awaitable[None]]  # records one result per recipient


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: float = 30.0
    command: float = 300.0  # RFC 5321 §4.5.3.2: 5 minutes for the greeting, MAIL, RCPT; more for DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str  # the MX name (for TLS SNI and logs)
    address: str  # the IP address to connect to


@dataclass(frozen=True, slots=True, kw_only=True)
class Relay:
    """How to talk to a smarthost: TLS is required (STARTTLS, or implicit on 465), AUTH PLAIN when given."""

    is_implicit_tls: bool = False
    username: str = ""
    password: str = ""


class _Failed(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


def _temporary(text: str) -> Reply:
    return Reply(code=451, status="4.4.1", text=text)  # RFC 3463 X.4.1: no answer from host


async def deliver(
    targets: Sequence[Target],
    request: MailRequest,
    *,
    port: int,
    read: ReadContent,
    size: int,
    helo: str,
    tls: ssl.SSLContext | None,
    settle: Settle,
    relay: Relay | None = None,
    require_tls: bool = False,
    timeouts: Timeouts = Timeouts(),
    cache: ConnectionCache | None = None,
) -> None:
    """Try `targets` in order (MX hosts, or a smarthost with `relay` set) until one gives answers;
    `settle` is awaited exactly once, with one result per recipient. With `require_tls` (an MTA-STS
    policy in force) a host that does not complete STARTTLS with `tls` (a verifying context) is skipped.
    With `cache`, a connection kept from an earlier message to the same host, opened under the same TLS
    and login requirements, is used first, and the connection is kept afterwards instead of QUIT."""
    last: Reply | None = None
    for target in targets:
        key = _Key(host=target.host, address=target.address, port=port, tls=tls, require_tls=require_tls, relay=relay)
        opening = _Opening(target=target, key=key, port=port, helo=helo, tls=tls, relay=relay, timeouts=timeouts)
        try:
            await _session(opening, request, read=read, size=size, settle=settle, require_tls=require_tls, cache=cache)
        except _Failed as failure:
            last = failure.reply
            log.info("outbound host=%s address=%s failed: %s", target.host, target.address, failure)
            continue
        return
    reply = last or _temporary("no mail host could be reached")
    await settle(
        tuple(RecipientResult(address=r.address, outcome=Outcome.TEMPORARY, reply=reply) for r in request.recipients)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Key:
    """What a kept connection was opened under; it is reused only for exactly the same."""

    host: str
    address: str
    port: int
    tls: ssl.SSLContext | None  # by identity: the opportunistic or the verifying context
    require_tls: bool
    relay: Relay | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Opening:
    target: Target
    key: _Key
    port: int
    helo: str
    tls: ssl.SSLContext | None
    relay: Relay | None
    timeouts: Timeouts


async def _session(
    opening: _Opening,
    request: MailRequest,
    *,
    read: ReadContent,
    size: int,
    settle: Settle,
    require_tls: bool,
    cache: ConnectionCache | None,
) -> None:
    """One transaction on a kept connection, or on a new one when none is kept or the kept one is dead."""
    target = opening.target
    session = cache.take(opening.key) if cache is not None else None
    transaction: Transaction | None = None
    if session is not None and cache is not None:
        try:
            transaction = Transaction(session.conn, request)
            is_alive = await _reset(session, transaction)
        except BaseException:
            await session.stream.close()
            raise
        if not is_alive:  # the remote closed it meanwhile: not a failure of this host, open a new one
            log.debug("outbound host=%s address=%s kept connection is gone", target.host, target.address)
            cache.discard(session)
            session, transaction = None, None
    if session is None:
        session = await _open(opening, require_tls=require_tls)
        try:
            transaction = Transaction(session.conn, request)
            session.stream.write(transaction.start())
        except BaseException:
            await session.stream.close()
            raise
    assert transaction is not None
    try:
        await _exchange(transaction, session.stream, read=read, size=size)
    except (ConnectionError, IdleTimeout, ssl.SSLError) as exc:
        await session.stream.close()
        raise _Failed(_temporary(f"{target.host} [{target.address}]: {exc or type(exc).__name__}")) from exc
    except BaseException:
        await session.stream.close()
        raise
    # Outside the try above: a failed record must not try the next host.
    if cache is None:
        try:
            await settle(transaction.results)
        finally:
            await session.close()
        return
    # Kept for the next message while the answers are recorded (a commit, often the longest step):
    # the session says QUIT only once every record made for it is done (see Session.close).
    with session.recording():
        cache.give_back(session)
        await settle(transaction.results)


async def _open(opening: _Opening, *, require_tls: bool) -> Session:
    """Connect, read the greeting, EHLO, STARTTLS when offered (required with `require_tls`), log in to a relay."""
    target, tls, relay, timeouts = opening.target, opening.tls, opening.relay, opening.timeouts
    try:
        stream = await connect(
            target.address, opening.port, connect_timeout=timeouts.connect, idle_timeout=timeouts.command
        )
    except (OSError, TimeoutError) as exc:
        raise _Failed(_temporary(f"cannot connect to {target.host} [{target.address}]: {exc}")) from exc
    opened = asyncio.get_running_loop().time()
    is_implicit = relay is not None and relay.is_implicit_tls
    conn = ClientConnection(hostname=opening.helo, is_tls=is_implicit)
    try:
        if is_implicit:  # RFC 8314 §3.3: TLS from the first byte
            if tls is None:
                raise _Failed(_temporary("the smarthost needs TLS and none is configured"))
            await stream.start_tls(tls, server_hostname=target.host)
        greeting = await _reply(conn, stream)
        if greeting.code != 220:
            raise _Failed(greeting if greeting.code >= 400 else _temporary(f"greeting {greeting.code}"))
        await _hello(conn, stream)
        if tls is not None and not conn.is_tls and conn.capabilities.has_starttls:
            stream.write(conn.starttls())
            if (await _reply(conn, stream)).code == 220:
                await stream.start_tls(tls, server_hostname=target.host)
                conn.tls_established()
                await _hello(conn, stream)
        if require_tls and not conn.is_tls:  # RFC 8461 §5: no verified TLS, no delivery to this host
            raise _Failed(Reply(code=451, status="4.7.5", text=f"{target.host}: MTA-STS policy requires TLS"))
        if relay is not None:
            await _relay_login(conn, stream, relay)
    except (ConnectionError, IdleTimeout, ssl.SSLError) as exc:
        await stream.close()
        raise _Failed(_temporary(f"{target.host} [{target.address}]: {exc or type(exc).__name__}")) from exc
    except BaseException:
        await stream.close()
        raise
    return Session(key=opening.key, stream=stream, conn=conn, opened=opened)


async def _reset(session: Session, transaction: Transaction) -> bool:
    """RSET on a kept connection, with the transaction's first commands pipelined behind it when the server
    allows (RFC 2920 §3.1 lets RSET lead a group). True when RSET got its 250 and the transaction is under
    way; False when the connection is dead (EOF, 421, no answer): nothing of the message was sent then, as
    no content goes out before the replies to the envelope are read."""
    conn, stream = session.conn, session.stream
    try:
        reset = conn.rset()
        stream.write(reset + transaction.start() if transaction.is_pipelined else reset)
        event = await _event(conn, stream)
        if not (isinstance(event, Replied) and event.reply.code == 250):
            return False
        if not transaction.is_pipelined:
            stream.write(transaction.start())
    except (ConnectionError, IdleTimeout, ssl.SSLError):
        return False
    return True


async def _exchange(transaction: Transaction, stream: Stream, *, read: ReadContent, size: int) -> None:
    """Read replies and send what the transaction asks for until it is done."""
    conn = transaction.connection
    while not transaction.is_done:
        if transaction.phase is Phase.CONTENT:
            await _send_content(transaction, stream, read=read, size=size)
            continue
        event = await _event(conn, stream)
        if isinstance(event, Replied):
            stream.write(transaction.receive(event))
        else:
            transaction.fail(event)


async def _relay_login(conn: ClientConnection, stream: Stream, relay: Relay) -> None:
    """A smarthost gets our credentials only over TLS (RFC 4954 §4, RFC 8314 §3)."""
    if not conn.is_tls:
        raise _Failed(Reply(code=454, status="4.7.0", text="the smarthost offers no TLS; not sending"))
    if not relay.username:
        return
    if "PLAIN" not in conn.capabilities.auth_mechanisms:
        raise _Failed(Reply(code=454, status="4.7.0", text="the smarthost offers no AUTH PLAIN"))
    stream.write(conn.auth_plain(username=relay.username, password=relay.password))
    reply = await _reply(conn, stream)
    if reply.code != 235:  # a wrong password is our configuration: keep the mail, retry (as Postfix does)
        raise _Failed(Reply(code=454, status="4.7.0", text=f"smarthost login failed: {reply.code} {reply.lines[0]}"))


async def _hello(conn: ClientConnection, stream: Stream) -> None:
    stream.write(conn.ehlo())
    reply = await _reply(conn, stream)
    if reply.code != 250:  # RFC 5321 §3.2: fall back to HELO
        stream.write(conn.helo())
        reply = await _reply(conn, stream)
        if reply.code != 250:
            raise _Failed(reply if reply.code >= 400 else _temporary(f"HELO answered {reply.code}"))


async def _send_content(transaction: Transaction, stream: Stream, *, read: ReadContent, size: int) -> None:
    if transaction.is_chunked:  # BDAT without pipelining waits for each chunk's reply: send one chunk
        data = transaction.content(await read(0, size))
    else:
        data = b""
        for start in range(0, size, CHUNK):
            stream.write(data)
            await stream.drain()
            data = transaction.content(await read(start, min(size, start + CHUNK)))
    stream.write(data + transaction.end_content())  # the last piece and the end in one write


async def _event(conn: ClientConnection, stream: Stream) -> Replied | Reply:
    """The next reply, or the temporary failure that ends the connection."""
    while True:
        event = conn.next_event()
        match event:
            case NeedData():
                await stream.drain()
                conn.receive_data(await stream.read())
            case Replied():
                return event
            case MalformedReply(reply=reply):
                return reply
            case ConnectionClosed():
                return _temporary("connection closed by the remote")


async def _reply(conn: ClientConnection, stream: Stream) -> Reply:
    event = await _event(conn, stream)
    if isinstance(event, Replied):
        return event.reply
    raise _Failed(event)
