"""An in-process POP3 service: real sockets on 127.0.0.1 (pop3 with STLS, pop3s), a real SQLite store and
blob files in tmp_path, messages delivered with `store.append`, and transcript checks."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from pochta import pop3d
from pochta.accounts import hash_password
from pochta.config import Config
from pochta.mail.mime import parse_message
from pochta.net import Listener, Stream
from pochta.store.api import INBOX, Message, NewMessage, ScramCredentials
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.tls import ensure_self_signed, server_context

from ..certs import client_tls
from ..transcript import play

CLOCK = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
AUTH_DELAY = 0.05


@functools.cache
def _password_hash() -> tuple[str, ScramCredentials]:
    return hash_password(PASSWORD)  # argon2id takes a while: once per test run


_certificates: list[tuple[Path, Path]] = []


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    if not _certificates:  # kept in the first test's tmp_path, which outlives the run
        _certificates.append(ensure_self_signed(tmp_path / "tls", "pop.example.test"))
    return _certificates[0]


def _refuse(_stream: Stream, reason: str) -> bytes:
    return f"-ERR [SYS/TEMP] {reason}\r\n".encode()


class Client:
    """One POP3 client connection speaking raw lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def raw_line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def line(self) -> str:
        return (await self.raw_line()).decode("utf-8", errors="replace").rstrip("\r\n")

    async def command(self, text: str) -> str:
        await self.send(text.encode() + b"\r\n")
        return await self.line()

    async def multiline(self, text: str) -> tuple[str, bytes]:
        """Send a command answered by a multi-line response: its status line and the raw wire octets of
        the body up to and with the final ".\r\n"."""
        status = await self.command(text)
        assert status.startswith("+OK"), status
        body = bytearray()
        while True:
            line = await self.raw_line()
            assert line, "connection closed inside a multi-line response"
            body += line
            if line == b".\r\n":
                return status, bytes(body)

    async def retrieve(self, text: str) -> bytes:
        """The message of a RETR/TOP as the client sees it: byte-stuffing undone, final line removed."""
        _, body = await self.multiline(text)
        lines = body.split(b"\r\n")[:-2]
        return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)

    async def login(self, user: str, password: str = PASSWORD) -> str:
        assert (await self.command(f"USER {user}")).startswith("+OK")
        return await self.command(f"PASS {password}")

    async def starttls(self) -> None:
        await self.writer.start_tls(client_tls())

    async def is_closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class Pop3:
    def __init__(self, store: SqliteStore, blobs: FileBlobs, plain: Listener, implicit: Listener) -> None:
        self.store = store
        self.blobs = blobs
        self.plain = plain
        self.implicit = implicit
        self.clients: list[Client] = []

    @property
    def port(self) -> int:
        return self.plain.ports[0]

    @property
    def tls_port(self) -> int:
        return self.implicit.ports[0]

    async def connect(self, *, tls: bool = False) -> Client:
        if tls:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.tls_port, ssl=client_tls())
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def transcript(self, text: str, *, client: Client | None = None) -> Client:
        """`C:` lines are sent, `S:` lines must come back exactly (a trailing `*` matches any rest of the
        line); a new client unless one is given. Returns the still open client."""
        client = client or await self.connect()
        await play(client, text)
        return client

    async def add_user(self, address: str) -> int:
        domain = address.rpartition("@")[2]
        if await self.store.get_domain(domain) is None:
            await self.store.add_domain(domain)
        password_hash, scram = _password_hash()
        account = await self.store.add_account(address, password_hash=password_hash, scram=scram)
        return account.id

    async def inbox_id(self, address: str) -> int:
        account = await self.store.get_account(address)
        assert account is not None
        mailbox = await self.store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        return mailbox.id

    async def deliver(self, address: str, data: bytes) -> int:
        """Store `data` in the INBOX of `address` as delivery does (blob, stored parse); its UID."""
        account = await self.store.get_account(address)
        assert account is not None
        ref = await self.blobs.put(data)
        appended = await self.store.append(
            [
                NewMessage(
                    account_id=account.id,
                    mailbox_id=await self.inbox_id(address),
                    blob_id=ref.id,
                    size=ref.size,
                    structure=parse_message(data).dumps(),
                    internal_date=CLOCK,
                )
            ]
        )
        return appended[0].uid

    async def inbox(self, address: str) -> list[Message]:
        return await self.store.messages(await self.inbox_id(address))


@asynccontextmanager
async def running_pop3(tmp_path: Path, *, idle_timeout: float = 30.0) -> AsyncIterator[Pop3]:
    store = await SqliteStore.open(tmp_path / "data", fsync=False)
    blobs = FileBlobs(tmp_path / "blobs", fsync=False, database=tmp_path / "data" / DATABASE_NAME)
    cert, key = _certificate(tmp_path)
    tls = server_context(cert, key)
    config = Config(hostname="pop.example.test", data_dir=str(tmp_path / "data"))
    handlers = pop3d.handlers(store=store, blobs=blobs, config=config, tls=tls, auth_failure_delay=AUTH_DELAY)
    options = {"idle_timeout": idle_timeout, "max_per_ip": 50, "max_total": 100, "refuse": _refuse}
    plain = Listener("pop3", handlers["pop3"], **options)  # type: ignore[arg-type]
    implicit = Listener("pop3s", handlers["pop3s"], tls=tls, **options)  # type: ignore[arg-type]
    await plain.bind(["127.0.0.1:0"])
    await implicit.bind(["127.0.0.1:0"])
    pop3 = Pop3(store, blobs, plain, implicit)
    try:
        yield pop3
    finally:
        for client in pop3.clients:
            await client.close()
        for listener in (plain, implicit):
            listener.stop_accepting()
        await asyncio.gather(plain.finish(5), implicit.finish(5))
        blobs.close()
        await store.close()
