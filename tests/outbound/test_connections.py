"""The outbound connection cache over real sockets on 127.0.0.1: `deliver` against a small SMTP server
(a fake remote MX: what lies outside the machine) that logs every connection's commands."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from pochta.mail.address import parse_address
from pochta.outbound.connections import CacheLimits, ConnectionCache
from pochta.outbound.deliver import Target, deliver
from pochta.proto.smtp.client import MailRequest, Outcome, RecipientRequest, RecipientResult

CONTENT = b"From: a@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
TARGET = Target(host="mx.remote.test", address="127.0.0.1")


@dataclass
class Remote:
    """Answers like a plain MTA; `sessions` holds each connection's commands, `messages` each 250'd DATA.
    `drop_after`: close (after a 421 when `says_421`) once a connection has taken that many messages."""

    has_pipelining: bool = True
    drop_after: int = 0
    says_421: bool = False
    refuses_rset: bool = False  # answer RSET with 421 and close
    sessions: list[list[str]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    closed: int = 0

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        commands: list[str] = []
        self.sessions.append(commands)
        taken = 0
        writer.write(b"220 mx.remote.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                commands.append(command)
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    writer.write(b"250-mx.remote.test\r\n" + (b"250-PIPELINING\r\n" if self.has_pipelining else b""))
                    writer.write(b"250 8BITMIME\r\n")
                elif verb == "DATA":
                    writer.write(b"354 go ahead\r\n")
                    content = b""
                    while (data := await reader.readline()) != b".\r\n":
                        if not data:
                            return  # the client went away before the end of the content: nothing taken
                        content += data
                    self.messages.append(content)
                    taken += 1
                    writer.write(b"250 2.0.0 queued\r\n")
                    if self.drop_after and taken >= self.drop_after:
                        await writer.drain()
                        if self.says_421:
                            writer.write(b"421 4.3.2 closing for maintenance\r\n")
                        break
                elif verb == "RSET" and self.refuses_rset:
                    writer.write(b"421 4.3.2 shutting down\r\n")
                    await writer.drain()
                    break
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    break
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        finally:
            writer.close()
            self.closed += 1


@asynccontextmanager
async def running(remote: Remote) -> AsyncIterator[int]:
    server = await asyncio.start_server(remote.session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _send(
    port: int,
    cache: ConnectionCache | None,
    *,
    rcpt: str = "b@remote.test",
    tls: ssl.SSLContext | None = None,
    require_tls: bool = False,
    recorded: asyncio.Event | None = None,
) -> tuple[RecipientResult, ...]:
    settled: list[tuple[RecipientResult, ...]] = []

    async def read(start: int, end: int) -> bytes:
        return CONTENT[start:end]

    async def settle(results: tuple[RecipientResult, ...]) -> None:
        if recorded is not None:  # a record that takes its time (a slow commit)
            await recorded.wait()
        settled.append(results)

    request = MailRequest(
        mail_from=parse_address("a@example.test"),
        recipients=(RecipientRequest(address=parse_address(rcpt)),),
        size=len(CONTENT),
    )
    await deliver(
        [TARGET],
        request,
        port=port,
        read=read,
        size=len(CONTENT),
        helo="mx.example.test",
        tls=tls,
        settle=settle,
        require_tls=require_tls,
        cache=cache,
    )
    (results,) = settled
    return results


def _accepted(results: tuple[RecipientResult, ...]) -> bool:
    return all(result.outcome is Outcome.ACCEPTED for result in results)


async def _until(condition: object, *, seconds: float = 5) -> None:
    for _ in range(int(seconds * 50)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("has_pipelining", [True, False])
async def test_messages_to_one_host_share_a_connection_with_rset_between(has_pipelining: bool) -> None:
    remote = Remote(has_pipelining=has_pipelining)
    cache = ConnectionCache(CacheLimits(idle_time_limit=30))
    async with running(remote) as port:
        for number in range(3):
            assert _accepted(await _send(port, cache, rcpt=f"b{number}@remote.test"))
        assert len(remote.sessions) == 1 and len(cache) == 1 and cache.reused == 2
        (commands,) = remote.sessions
        envelope = ["MAIL FROM:<a@example.test>", "RCPT TO:<b{}@remote.test>", "DATA"]
        assert [c for c in commands if not c.startswith("EHLO")] == [
            *(line.format(0) for line in envelope),
            "RSET",
            *(line.format(1) for line in envelope),
            "RSET",
            *(line.format(2) for line in envelope),
        ]
        assert remote.messages == [CONTENT] * 3
        await cache.close()  # QUIT only now, long after each 250 was settled
        await _until(lambda: remote.closed == 1)
        assert remote.sessions[0][-1] == "QUIT" and len(cache) == 0


async def test_without_a_cache_every_message_quits() -> None:
    remote = Remote()
    async with running(remote) as port:
        for _ in range(2):
            assert _accepted(await _send(port, None))
        await _until(lambda: remote.closed == 2)
    assert [session[-1] for session in remote.sessions] == ["QUIT", "QUIT"]
    assert not any("RSET" in session for session in remote.sessions)


async def test_an_idle_connection_quits_after_the_idle_time_limit() -> None:
    remote = Remote()
    cache = ConnectionCache(CacheLimits(idle_time_limit=0.2))
    async with running(remote) as port:
        assert _accepted(await _send(port, cache))
        assert len(cache) == 1
        await _until(lambda: remote.closed == 1)  # said QUIT by itself
        assert remote.sessions[0][-1] == "QUIT" and len(cache) == 0
        assert _accepted(await _send(port, cache))
        assert len(remote.sessions) == 2 and cache.reused == 0
        await cache.close()


async def test_a_connection_is_used_at_most_max_uses_times() -> None:
    remote = Remote()
    cache = ConnectionCache(CacheLimits(max_uses=2, idle_time_limit=30))
    async with running(remote) as port:
        for _ in range(5):
            assert _accepted(await _send(port, cache))
        await cache.close()
        await _until(lambda: remote.closed == 3)
    assert [sum(c == "DATA" for c in session) for session in remote.sessions] == [2, 2, 1]
    assert all(session[-1] == "QUIT" for session in remote.sessions)


async def test_a_connection_is_not_reused_past_the_reuse_time_limit() -> None:
    remote = Remote()
    cache = ConnectionCache(CacheLimits(reuse_time_limit=0.3, idle_time_limit=30))
    async with running(remote) as port:
        assert _accepted(await _send(port, cache))
        assert _accepted(await _send(port, cache))
        await asyncio.sleep(0.4)
        assert _accepted(await _send(port, cache))
        await cache.close()
    assert [sum(c == "DATA" for c in session) for session in remote.sessions] == [2, 1]


@pytest.mark.parametrize("says_421", [False, True])
async def test_a_kept_connection_the_remote_closed_is_replaced_without_a_failure(says_421: bool) -> None:
    # the remote takes one message per connection, then closes (after a 421, or silently)
    remote = Remote(drop_after=1, says_421=says_421)
    cache = ConnectionCache(CacheLimits(idle_time_limit=30))
    async with running(remote) as port:
        for number in range(3):
            assert _accepted(await _send(port, cache, rcpt=f"b{number}@remote.test"))
            await _until(lambda closed=number + 1: remote.closed == closed)
        await cache.close()
    assert remote.messages == [CONTENT] * 3
    assert len(remote.sessions) == 3


@pytest.mark.parametrize("has_pipelining", [True, False])
async def test_a_connection_whose_rset_gets_a_421_is_replaced(has_pipelining: bool) -> None:
    # the remote starts shutting down while the connection is kept: RSET gets 421 and the close; the
    # message goes over a new connection, and nothing of it was taken on the old one
    remote = Remote(has_pipelining=has_pipelining, refuses_rset=True)
    cache = ConnectionCache(CacheLimits(idle_time_limit=30))
    async with running(remote) as port:
        assert _accepted(await _send(port, cache, rcpt="b0@remote.test"))
        assert _accepted(await _send(port, cache, rcpt="b1@remote.test"))
        await cache.close()
    assert len(remote.sessions) == 2 and remote.messages == [CONTENT] * 2
    assert remote.sessions[0][-1] == "RSET" and cache.reused == 1
    assert "RCPT TO:<b1@remote.test>" in remote.sessions[1]


async def test_a_connection_is_reused_only_under_the_same_tls_requirements() -> None:
    remote = Remote()
    cache = ConnectionCache(CacheLimits(idle_time_limit=30))
    opportunistic = ssl.create_default_context()
    async with running(remote) as port:
        assert _accepted(await _send(port, cache, tls=None))
        # a route that requires TLS (MTA-STS) never takes the plain connection; without STARTTLS it fails
        (required,) = await _send(port, cache, tls=opportunistic, require_tls=True)
        assert required.outcome is Outcome.TEMPORARY and required.reply.status == "4.7.5"
        assert _accepted(await _send(port, cache, tls=None))
        await cache.close()
    assert len(remote.sessions) == 2  # the plain one (used twice) and the one that offered no STARTTLS
    assert sum(c == "DATA" for c in remote.sessions[0]) == 2 and "DATA" not in remote.sessions[1]


async def test_the_connection_is_reused_while_answers_are_recorded_but_quits_only_after() -> None:
    remote = Remote()
    cache = ConnectionCache(CacheLimits(idle_time_limit=30))
    recorded = asyncio.Event()
    async with running(remote) as port:
        first = asyncio.ensure_future(_send(port, cache, rcpt="b0@remote.test", recorded=recorded))
        await _until(lambda: len(cache) == 1)  # kept while its answers are still being recorded
        assert _accepted(await _send(port, cache, rcpt="b1@remote.test"))  # on the same connection
        closing = asyncio.ensure_future(cache.close())
        await asyncio.sleep(0.3)
        assert remote.closed == 0 and "QUIT" not in remote.sessions[0]  # the first record is not done
        recorded.set()
        assert _accepted(await first)
        await closing
        await _until(lambda: remote.closed == 1)
    assert len(remote.sessions) == 1 and remote.sessions[0][-1] == "QUIT" and len(remote.messages) == 2
