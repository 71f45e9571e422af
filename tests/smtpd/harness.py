"""An in-process Pochta (real sockets on 127.0.0.1, real SQLite store in tmp_path, fixed clock) and
transcript checks in the style of CONVENTIONS.md."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pochta.accounts import hash_password
from pochta.app import Server
from pochta.config import Config, from_mapping
from pochta.filters.pipeline import Check, Pipeline
from pochta.store.api import INBOX, Message, Store
from pochta.store.blobs import FileBlobs

from ..certs import client_tls
from ..transcript import play

CLOCK = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
_NO_LISTENERS = {
    name: [] for name in ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "managesieve", "http")
}


class Client:
    """One SMTP client connection speaking raw lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self) -> str:
        data = await asyncio.wait_for(self.reader.readline(), 10)
        return data.decode("utf-8", errors="replace").rstrip("\r\n")

    async def reply(self) -> list[str]:
        """All lines of one (possibly multi-line) reply."""
        lines = [await self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(await self.line())
        return lines

    async def command(self, text: str) -> list[str]:
        await self.send(text.encode() + b"\r\n")
        return await self.reply()

    async def starttls(self) -> None:
        await self.writer.start_tls(client_tls())

    async def is_closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class Mx:
    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.clients: list[Client] = []  # closed when the server stops

    @property
    def store(self) -> Store:
        assert self.server.store is not None
        return self.server.store

    @property
    def blobs(self) -> FileBlobs:
        assert self.server.blobs is not None
        return self.server.blobs

    @property
    def port(self) -> int:
        return self.server.ports("smtp")[0]

    async def connect(self, service: str = "smtp", *, tls: bool = False) -> Client:
        port = self.server.ports(service)[0]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls() if tls else None)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def transcript(self, text: str) -> Client:
        """Check an exchange: `C:` lines are sent, `S:` lines must come back exactly (a trailing `*`
        matches any rest of the line). Returns the still open client."""
        client = await self.connect()
        await play(client, text)
        return client

    async def add_user(self, address: str, *, quota: int = 0) -> int:
        domain = address.rpartition("@")[2]
        if await self.store.get_domain(domain) is None:
            await self.store.add_domain(domain)
        password_hash, scram = hash_password(PASSWORD)
        account = await self.store.add_account(address, password_hash=password_hash, scram=scram, quota_bytes=quota)
        return account.id

    async def inbox(self, address: str) -> list[Message]:
        account = await self.store.get_account(address)
        assert account is not None
        mailbox = await self.store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        return await self.store.messages(mailbox.id, with_structure=True)

    async def inbox_bytes(self, address: str) -> list[bytes]:
        return [await self.blobs.read(m.blob_id) for m in await self.inbox(address)]


class _CheckedServer(Server):
    """A Server whose MX runs extra checks after the configured ones (to test the pipeline seam)."""

    def __init__(self, config: Config, *, checks: Sequence[Check], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._extra_checks = tuple(checks)

    def _pipelines(self, store: Store) -> tuple[Pipeline, Pipeline]:
        inbound, outgoing = super()._pipelines(store)
        return Pipeline([*inbound.checks, *self._extra_checks]), outgoing


@asynccontextmanager
async def running_mx(tmp_path: Path, *, checks: Sequence[Check] = (), **overrides: Any) -> AsyncIterator[Mx]:
    raw: dict[str, Any] = {
        "hostname": "mx.example.test",
        "data_dir": str(tmp_path / "data"),
        "listen": {**_NO_LISTENERS, "smtp": ["127.0.0.1:0"]},
        # nothing outside the machine: a closed local port answers every lookup at once
        "dns": {"nameservers": ["127.0.0.1:9"], "timeout": 0.5},
        # exact stored bytes in most tests; tests/filters/test_authcheck.py turns it on with a DNS server
        "auth": {"enabled": False},
        "spam": {"enabled": False},  # likewise; tests/filters/spam turn it on
    }
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    ids = iter(f"id{n:04d}" for n in range(1, 100000))
    server = _CheckedServer(
        from_mapping(raw), checks=checks, now=lambda: CLOCK, new_id=lambda: next(ids), auth_failure_delay=0.05
    )
    await server.start()
    mx = Mx(server, tmp_path)
    try:
        yield mx
    finally:
        for client in mx.clients:
            await client.close()
        await server.stop()
