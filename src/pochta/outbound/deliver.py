"""One delivery attempt to a remote domain: try its mail hosts in order, speak SMTP with the client
core, and return one result per recipient.

Opportunistic STARTTLS (RFC 3207) whenever the remote offers it; unverified, since most MX
certificates do not match (MTA-STS, RFC 8461, will make it verified where a domain asks for that).
A host that cannot be reached, greets with anything but 220, or fails before giving an answer for
the recipients is skipped for the next one (RFC 5321 §5.1); definite answers end the attempt.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pochta.net import IdleTimeout, Stream, connect
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: float = 30.0
    command: float = 300.0  # RFC 5321 §4.5.3.2: 5 minutes for the greeting, MAIL, RCPT; more for DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str  # the MX name (for TLS SNI and logs)
    address: str  # the IP address to connect to


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
    timeouts: Timeouts = Timeouts(),
) -> tuple[RecipientResult, ...]:
    last = _temporary("no mail host could be reached")
    for target in targets:
        try:
            results = await _session(
                target, request, port=port, read=read, size=size, helo=helo, tls=tls, timeouts=timeouts
            )
        except _Failed as failure:
            last = failure.reply
            log.info("outbound host=%s address=%s failed: %s", target.host, target.address, failure)
            continue
        return results
    return tuple(RecipientResult(address=r.address, outcome=Outcome.TEMPORARY, reply=last) for r in request.recipients)


async def _session(
    target: Target,
    request: MailRequest,
    *,
    port: int,
    read: ReadContent,
    size: int,
    helo: str,
    tls: ssl.SSLContext | None,
    timeouts: Timeouts,
) -> tuple[RecipientResult, ...]:
    try:
        stream = await connect(target.address, port, connect_timeout=timeouts.connect, idle_timeout=timeouts.command)
    except (OSError, TimeoutError) as exc:
        raise _Failed(_temporary(f"cannot connect to {target.host} [{target.address}]: {exc}")) from exc
    conn = ClientConnection(hostname=helo)
    try:
        greeting = await _reply(conn, stream)
        if greeting.code != 220:
            raise _Failed(greeting if greeting.code >= 400 else _temporary(f"greeting {greeting.code}"))
        await _hello(conn, stream)
        if tls is not None and conn.capabilities.has_starttls:
            stream.write(conn.starttls())
            if (await _reply(conn, stream)).code == 220:
                await stream.start_tls(tls, server_hostname=target.host)
                conn.tls_established()
                await _hello(conn, stream)
        transaction = Transaction(conn, request)
        stream.write(transaction.start())
        while not transaction.is_done:
            if transaction.phase is Phase.CONTENT:
                await _send_content(transaction, stream, read=read, size=size)
                continue
            event = await _event(conn, stream)
            if isinstance(event, Replied):
                stream.write(transaction.receive(event))
            else:
                transaction.fail(event)
        if not conn.is_closed:
            stream.write(conn.quit())
        return transaction.results
    except (ConnectionError, IdleTimeout, ssl.SSLError) as exc:
        raise _Failed(_temporary(f"{target.host} [{target.address}]: {exc or type(exc).__name__}")) from exc
    finally:
        await stream.close()


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
        stream.write(transaction.content(await read(0, size)))
    else:
        for start in range(0, size, CHUNK):
            stream.write(transaction.content(await read(start, min(size, start + CHUNK))))
            await stream.drain()
    stream.write(transaction.end_content())


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
