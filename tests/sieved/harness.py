"""An in-process ManageSieve service: a real socket on 127.0.0.1, a real SQLite store in tmp_path,
and transcript checks."""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from pochta import sieved
from pochta.accounts import hash_password
from pochta.config import Config, Sieve
from pochta.net import Listener, Stream
from pochta.store.api import ScramCredentials
from pochta.store.sqlite import SqliteStore
from pochta.tls import ensure_self_signed, server_context

from ..certs import client_tls
from ..transcript import play

PASSWORD = "correct horse battery"
AUTH_DELAY = 0.05


@functools.cache
def _password_hash() -> tuple[str, ScramCredentials]:
    return hash_password(PASSWORD)


_certificates: list[tuple[Path, Path]] = []


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    if not _certificates:
        _certificates.append(ensure_self_signed(tmp_path / "tls", "sieve.example.test"))
    return _certificates[0]


def _refuse(_stream: Stream, reason: str) -> bytes:
    return f'BYE (TRYLATER) "{reason}"\r\n'.encode()


def plain(user: str, password: str = PASSWORD) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), 10)
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def until_status(self) -> list[str]:
        """Lines up to and with the next OK/NO/BYE line."""
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.split(" ", 1)[0] in ("OK", "NO", "BYE") or not line:
                return lines

    async def login(self, user: str = "alice@example.test") -> None:
        await self.until_status()  # the greeting
        await self.send(f'AUTHENTICATE "PLAIN" "{plain(user)}"\r\n'.encode())
        assert await self.line() == 'OK "logged in"'

    async def starttls(self) -> None:
        await self.writer.start_tls(client_tls())

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class Sieved:
    def __init__(self, store: SqliteStore, listener: Listener) -> None:
        self.store = store
        self.listener = listener
        self.clients: list[Client] = []

    @property
    def port(self) -> int:
        return self.listener.ports[0]

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def transcript(self, text: str, *, client: Client | None = None) -> Client:
        """`C:` lines are sent (a `{n+}` literal's lines follow as further C: lines), `S:` lines must come
        back exactly (a trailing `*` matches any rest of the line)."""
        client = client or await self.connect()
        await play(client, text)
        return client

    async def add_user(self, address: str) -> int:
        domain = address.rpartition("@")[2]
        if await self.store.get_domain(domain) is None:
            await self.store.add_domain(domain)
        password_hash, scram = _password_hash()
        return (await self.store.add_account(address, password_hash=password_hash, scram=scram)).id


@asynccontextmanager
async def running_sieved(tmp_path: Path, *, sieve: Sieve | None = None) -> AsyncIterator[Sieved]:
    store = await SqliteStore.open(tmp_path / "data", fsync=False)
    cert, key = _certificate(tmp_path)
    tls = server_context(cert, key)
    config = Config(hostname="sieve.example.test", data_dir=str(tmp_path / "data"), sieve=sieve or Sieve())
    handlers = sieved.handlers(store=store, config=config, tls=tls, auth_failure_delay=AUTH_DELAY)
    listener = Listener(
        "managesieve", handlers["managesieve"], idle_timeout=30.0, max_per_ip=50, max_total=100, refuse=_refuse
    )
    await listener.bind(["127.0.0.1:0"])
    running = Sieved(store, listener)
    try:
        yield running
    finally:
        for client in running.clients:
            await client.close()
        listener.stop_accepting()
        await listener.finish(5)
        await store.close()
