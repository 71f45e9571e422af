"""The queue runner against a real SQLite store, a DNS server on 127.0.0.1 and a scripted remote MX (a
fake for what lies outside the machine): when an answer is recorded, and that an entry is sent once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from pochta.dns import DnsResolver
from pochta.mail.envelope import Envelope, Recipient
from pochta.queue.dsn import Report
from pochta.queue.runner import QueueRunner, RunnerSettings
from pochta.store.api import QueueItem, Store
from pochta.store.blobs import FileBlobs

from ..dnsserver import serving

ZONE = {"remote.test.": {"MX": ["10 mx.remote.test."]}, "mx.remote.test.": {"A": ["127.0.0.1"]}}


class _Remote:
    """Answers 250 to everything; counts connections, and each message by its Message-ID; calls `on_quit`
    at QUIT."""

    def __init__(self, *, answer_delay: float = 0.0, on_quit: Callable[[], Awaitable[None]] | None = None) -> None:
        self.received: Counter[str] = Counter()
        self.connections = 0
        self.open_now = 0
        self.most_open = 0  # connections open at the same time, at most
        self._answer_delay = answer_delay
        self._on_quit = on_quit

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self._serve(reader, writer)
        finally:
            self.open_now -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx.remote.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                message_id = ""
                while (data := await reader.readline()) not in (b".\r\n", b""):
                    if data.lower().startswith(b"message-id:"):
                        message_id = data.split(b":", 1)[1].strip().decode()
                await asyncio.sleep(self._answer_delay)
                self.received[message_id] += 1
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                if self._on_quit is not None:
                    await self._on_quit()
                writer.write(b"221 2.0.0 bye\r\n")
                break
            else:
                writer.write(b"250 mx.remote.test\r\n")
            await writer.drain()
        writer.close()


@asynccontextmanager
async def _running(remote: _Remote) -> AsyncIterator[int]:
    server = await asyncio.start_server(remote.session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _enqueue(store: Store, blobs: FileBlobs, count: int) -> None:
    for number in range(count):
        content = f"From: a@example.test\r\nMessage-ID: <m{number}@example.test>\r\n\r\nHello.\r\n".encode()
        ref = await blobs.put(content)
        envelope = Envelope(mail_from="a@example.test", recipients=(Recipient(address=f"b{number}@remote.test"),))
        item = QueueItem(blob_id=ref.id, size=ref.size, envelope=envelope.dumps(), domain="remote.test", account_id=1)
        await store.enqueue([item], now=datetime.now(UTC))


async def _no_notice(report: Report) -> None:
    raise AssertionError(f"no notice expected: {report}")


def _runner(store: Store, blobs: FileBlobs, *, nameserver: str, port: int, **settings: float) -> QueueRunner:
    return QueueRunner(
        queue=store,
        blobs=blobs,
        resolver=DnsResolver(nameservers=[nameserver], timeout=2.0),
        settings=RunnerSettings(hostname="mx.example.test", port=port, tls=None, **settings),  # type: ignore[arg-type]
        send_notice=_no_notice,
        now=lambda: datetime.now(UTC),
        shuffle=lambda hosts: None,
    )


async def _drained(store: Store, runner: QueueRunner) -> None:
    task = asyncio.ensure_future(runner.run())
    try:
        for _ in range(200):
            if not await store.queue_entries():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the queue did not drain")
    finally:
        await runner.stop(5)
        task.cancel()


async def test_an_entry_whose_lease_ran_out_while_waiting_for_a_slot_is_sent_once(
    store: Store, blobs: FileBlobs
) -> None:
    # one delivery at a time to the domain, and leases that run out at once: the entries waiting for the
    # domain's slot come back in the next claim while their first attempt is still queued here
    remote = _Remote(answer_delay=0.2)
    await _enqueue(store, blobs, 3)
    async with serving(ZONE) as nameserver, _running(remote) as port:
        runner = _runner(store, blobs, nameserver=nameserver, port=port, per_domain=1, lease_seconds=0)
        await _drained(store, runner)
    assert remote.received == {f"<m{n}@example.test>": 1 for n in range(3)}


async def test_the_remotes_250_is_recorded_before_quit(store: Store, blobs: FileBlobs) -> None:
    # a crash while waiting for QUIT's answer (or a TLS close) must not send the message again
    queued_at_quit: list[int] = []

    async def on_quit() -> None:
        queued_at_quit.append(len(await store.queue_entries()))

    remote = _Remote(on_quit=on_quit)
    await _enqueue(store, blobs, 1)
    async with serving(ZONE) as nameserver, _running(remote) as port:
        await _drained(store, _runner(store, blobs, nameserver=nameserver, port=port))
        for _ in range(100):  # the kept connection says QUIT at the runner's stop; the remote reads it soon after
            if queued_at_quit:
                break
            await asyncio.sleep(0.02)
    assert remote.received == {"<m0@example.test>": 1}
    assert queued_at_quit == [0]


async def test_queued_messages_to_one_domain_go_over_one_connection(store: Store, blobs: FileBlobs) -> None:
    remote = _Remote()
    await _enqueue(store, blobs, 5)
    async with serving(ZONE) as nameserver, _running(remote) as port:
        await _drained(store, _runner(store, blobs, nameserver=nameserver, port=port, per_domain=1))
    assert remote.received == {f"<m{n}@example.test>": 1 for n in range(5)}
    assert remote.connections == 1


async def test_connections_to_a_domain_stay_within_its_limit(store: Store, blobs: FileBlobs) -> None:
    remote = _Remote(answer_delay=0.05)
    await _enqueue(store, blobs, 12)
    async with serving(ZONE) as nameserver, _running(remote) as port:
        await _drained(store, _runner(store, blobs, nameserver=nameserver, port=port, per_domain=2))
    assert remote.received == {f"<m{n}@example.test>": 1 for n in range(12)}
    assert remote.most_open == 2 and remote.connections == 2
