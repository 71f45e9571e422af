"""An in-process IMAP service (real sockets on 127.0.0.1, real SQLite store and blobs in tmp_path) and
transcript checks in the style of CONVENTIONS.md."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from pochta.accounts import hash_password
from pochta.config import from_mapping
from pochta.imapd.service import handlers
from pochta.net import Handler, Listener
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.tls import ensure_self_signed, server_context

from ..certs import client_tls
from ..transcript import play

PASSWORD = "correct horse battery"
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")
_PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test run


class Client:
    """One IMAP client connection speaking raw lines; literals in responses are read whole."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tags = iter(f"t{n}" for n in range(1, 100000))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def raw_line(self) -> bytes:
        """One response line with any literals it announces (as raw bytes, CRLFs kept inside)."""
        data = await asyncio.wait_for(self.reader.readline(), 10)
        while (match := _LITERAL.search(data)) is not None:
            data += await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), 10)
            data += await asyncio.wait_for(self.reader.readline(), 10)
        return data.removesuffix(b"\r\n")

    async def line(self) -> str:
        return (await self.raw_line()).decode("utf-8", errors="replace")

    async def command(self, text: str | bytes, *, tag: str | None = None) -> list[str]:
        """Send ``tag text`` and return every line up to and including the tagged one."""
        tag = tag or next(self._tags)
        raw = text if isinstance(text, bytes) else text.encode()
        await self.send(tag.encode() + b" " + raw + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: str) -> list[str]:
        lines: list[str] = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    async def login(self, user: str = "alice@example.test") -> None:
        await self.line()  # greeting
        lines = await self.command(f'LOGIN {user} "{PASSWORD}"')
        assert " OK " in lines[-1], lines

    async def append(self, mailbox: str, message: bytes, *, flags: str = "") -> list[str]:
        """APPEND with a non-synchronising literal (LITERAL+)."""
        options = f" ({flags})" if flags else ""
        tag = next(self._tags)
        await self.send(
            b"%s APPEND %s%s {%d+}\r\n%s\r\n"
            % (tag.encode(), mailbox.encode(), options.encode(), len(message), message)
        )
        return await self.until(tag)

    async def starttls(self) -> None:
        await self.writer.start_tls(client_tls())

    async def is_closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class Imap:
    def __init__(
        self, store: SqliteStore, blobs: FileBlobs, listeners: dict[str, Listener], services: dict[str, Handler]
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.listeners = listeners
        self.services = services
        self.clients: list[Client] = []

    def port(self, name: str = "imap") -> int:
        return self.listeners[name].ports[0]

    async def connect(self, *, name: str = "imap", tls: bool = False) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port(name), ssl=client_tls() if tls else None)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def session(self, user: str = "alice@example.test") -> Client:
        client = await self.connect()
        await client.login(user)
        return client

    async def transcript(self, text: str, client: Client | None = None) -> Client:
        """`C:` lines are sent, `S:` lines must come back exactly (a trailing `*` matches any rest of
        the line; the CRLFs inside a response with literals are written as the four characters
        backslash-r-backslash-n). Returns the still open client."""
        client = client or await self.connect()
        await play(client, text, shown=lambda line: line.replace("\r\n", "\\r\\n"))
        return client

    async def add_user(self, address: str, *, quota: int = 0) -> int:
        domain = address.rpartition("@")[2]
        if await self.store.get_domain(domain) is None:
            await self.store.add_domain(domain)
        password_hash, scram = _PASSWORD_HASH
        account = await self.store.add_account(address, password_hash=password_hash, scram=scram, quota_bytes=quota)
        return account.id


def make_listener(name: str, handler: Handler, *, tls: ssl.SSLContext | None, idle_timeout: float) -> Listener:
    return Listener(
        name,
        handler,
        tls=tls,
        idle_timeout=idle_timeout,
        max_per_ip=100,
        max_total=1000,
        refuse=lambda _stream, reason: f"* BYE [UNAVAILABLE] {reason}\r\n".encode(),
    )


@asynccontextmanager
async def running_imap(tmp_path: Path, *, idle_timeout: float = 30.0) -> AsyncIterator[Imap]:
    store = await SqliteStore.open(tmp_path / "data", fsync=False)
    blobs = FileBlobs(tmp_path / "blobs", fsync=False, database=tmp_path / "data" / DATABASE_NAME)
    config = from_mapping({"hostname": "imap.example.test", "data_dir": str(tmp_path / "data")})
    cert, key = ensure_self_signed(tmp_path / "tls", "imap.example.test")
    tls = server_context(cert, key)
    services = handlers(store=store, blobs=blobs, config=config, tls=tls, failure_delay=0.05)
    listeners: dict[str, Listener] = {}
    for name, implicit in (("imap", False), ("imaps", True)):
        listener = make_listener(name, services[name], tls=tls if implicit else None, idle_timeout=idle_timeout)
        await listener.bind(["127.0.0.1:0"])
        listeners[name] = listener
    imap = Imap(store, blobs, listeners, services)
    try:
        yield imap
    finally:
        for client in imap.clients:
            await client.close()
        for listener in listeners.values():
            listener.stop_accepting()
        for listener in listeners.values():
            await listener.finish(2.0)
        await store.close()
        blobs.close()
