"""The only socket code: listeners (plain and implicit TLS), a Stream over an asyncio.Protocol we own,
idle timeouts, per-IP and total connection caps, and graceful shutdown.

Why our own Protocol rather than asyncio streams: STARTTLS must discard any plaintext the client pipelined
after the command (CVE-2011-0411), and a session must be interruptible at command boundaries for a clean
shutdown while never being interrupted mid-transaction. Both need a buffer we own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

from pochta.config import parse_host_port

log = logging.getLogger(__name__)

_HIGH_WATER = 256 * 1024  # stop reading from the socket when this much is buffered unread


class ShutdownRequested(Exception):
    """Raised by an interruptible read when the server is stopping; the session says goodbye."""


class IdleTimeout(TimeoutError):
    """The peer said nothing for the idle timeout."""


class ReadInterrupted(Exception):
    """A pokeable read gave up waiting because :meth:`Stream.poke` was called (IMAP IDLE has news)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsInfo:
    version: str
    cipher: str
    bits: int


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, on_made: Callable[[_StreamProtocol], None] | None = None) -> None:
        self._on_made = on_made  # a listener's: start the session once the connection is made
        self.buffer = bytearray()
        self.eof = False
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._write_ready = asyncio.Event()
        self._write_ready.set()
        # CPython 3.11's get_running_loop() makes a getpid() system call each time: look it up once
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they have its methods
        self.transport = cast(asyncio.Transport, transport)
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        self._write_ready.set()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_ready.clear()

    def resume_writing(self) -> None:
        self._write_ready.set()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_data(self) -> None:
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self, limit: int) -> bytes:
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        if self._paused_reading and len(self.buffer) < _HIGH_WATER // 2 and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    @property
    def can_write(self) -> bool:
        return self._write_ready.is_set()

    async def drain(self) -> None:
        await self._write_ready.wait()


class Stream:
    """One client connection."""

    def __init__(self, protocol: _StreamProtocol, *, idle_timeout: float, listener: Listener | None) -> None:
        self._protocol = protocol
        self._idle_timeout = idle_timeout
        self._listener = listener
        transport = protocol.transport
        assert transport is not None
        self._transport: asyncio.Transport = transport
        self.peer_host, self.peer_port = _host_port(transport.get_extra_info("peername"))
        self.local_host, self.local_port = _host_port(transport.get_extra_info("sockname"))
        self._interruptible = False
        self._pokeable = False
        self._poked = False
        # Writes are corked until the loop turns: the replies to a pipelined batch leave in one send(),
        # not one system call each (profiles of IMAP and SMTP load showed the calls, not the bytes).
        self._pending: list[bytes] = []

    @property
    def is_tls(self) -> bool:
        return self._transport.get_extra_info("ssl_object") is not None

    @property
    def tls_info(self) -> TlsInfo | None:
        obj = self._transport.get_extra_info("ssl_object")
        if not isinstance(obj, ssl.SSLObject):
            return None
        name, version, bits = obj.cipher() or ("", "", 0)
        return TlsInfo(version=obj.version() or version, cipher=name, bits=bits)

    @property
    def is_open(self) -> bool:
        """Neither side has closed the connection."""
        return not self._protocol.eof and not self._transport.is_closing()

    @property
    def has_unread_data(self) -> bool:
        return bool(self._protocol.buffer)

    @property
    def is_loopback(self) -> bool:
        return self.peer_host in ("127.0.0.1", "::1") or self.peer_host.startswith("127.")

    async def read(self, max_bytes: int = 65536, *, interruptible: bool = False, pokeable: bool = False) -> bytes:
        """Up to `max_bytes` (b"" at EOF). With `interruptible`, a shutdown raises ShutdownRequested
        while waiting: pass it only at command boundaries with no transaction open. With `pokeable`,
        :meth:`poke` raises ReadInterrupted while waiting (cheaper than racing the read with a task)."""
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            await self._wait_data(interruptible=interruptible, pokeable=pokeable)
        if protocol.buffer:
            return protocol.take(max_bytes)
        return b""

    async def _wait_data(self, *, interruptible: bool, pokeable: bool = False) -> None:
        # One timer per wait that only fires at the deadline: cheaper than asyncio.timeout() per read,
        # which showed up in profiles at thousands of reads a second.
        protocol = self._protocol
        loop = protocol.loop
        deadline = loop.time() + self._idle_timeout
        timer = loop.call_at(deadline, protocol._wake)
        try:
            while not protocol.buffer and not protocol.eof:
                if interruptible and self._listener is not None and self._listener.is_stopping:
                    raise ShutdownRequested
                if loop.time() >= deadline:
                    raise IdleTimeout(f"idle for {self._idle_timeout:.0f} s")
                self._interruptible = interruptible
                self._pokeable = pokeable
                try:
                    await protocol.wait_data()
                finally:
                    self._interruptible = self._pokeable = False
                if self._poked:
                    self._poked = False
                    raise ReadInterrupted
        finally:
            timer.cancel()

    def write(self, data: bytes) -> None:
        if not data or self._transport.is_closing():
            return
        if not self._pending:
            self._protocol.loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Hand what was written to the transport now."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        self.flush()
        if self._protocol.can_write:  # the common case: nothing queued, no timer needed
            return
        async with asyncio.timeout(self._idle_timeout):
            await self._protocol.drain()

    async def start_tls(self, context: ssl.SSLContext, *, server_hostname: str | None = None) -> int:
        """Upgrade to TLS: as the server, or as a client of `server_hostname` when it is given.
        Returns how many buffered plaintext octets were discarded."""
        await self.drain()
        discarded = len(self._protocol.buffer)
        self._protocol.buffer.clear()  # RFC 3207 §4.2 and CVE-2011-0411: nothing pipelined survives
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._idle_timeout):
            new_transport = await loop.start_tls(
                self._transport,
                self._protocol,
                context,
                server_side=server_hostname is None,
                server_hostname=server_hostname,
            )
        if new_transport is None:  # pragma: no cover - only when the transport closed meanwhile
            raise ConnectionError("connection closed during TLS handshake")
        self._transport = new_transport
        self._protocol.transport = new_transport
        return discarded

    def poke(self) -> None:
        """Interrupt a pokeable read that is waiting; nothing otherwise."""
        if self._pokeable:
            self._poked = True
            self._protocol._wake()

    def interrupt_if_idle(self) -> None:
        if self._interruptible:
            self._protocol._wake()

    def abort(self) -> None:
        """Drop the connection at once, unsent data and all (a peer that stopped answering)."""
        self._pending.clear()
        self._transport.abort()

    async def close(self) -> None:
        self.flush()
        protocol = self._protocol
        if not self._transport.is_closing():
            if not protocol.can_write:  # a peer that stopped reading; otherwise no task and timer to make
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(protocol.drain(), 5)
            self._transport.close()
        if not protocol.closed.done():
            await asyncio.wait({protocol.closed}, timeout=5)  # never cancels `closed`, so no shield
        if not protocol.closed.done():
            self._transport.abort()


async def connect(host: str, port: int, *, connect_timeout: float, idle_timeout: float) -> Stream:
    """A client connection (outbound SMTP), with the same Stream as the servers' sessions."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(connect_timeout):
        _, protocol = await loop.create_connection(_StreamProtocol, host, port)
    return Stream(protocol, idle_timeout=idle_timeout, listener=None)


async def connect_unix(path: str, *, connect_timeout: float, idle_timeout: float) -> Stream:
    """A client connection over a unix socket (a local daemon: clamd)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(connect_timeout):
        _, protocol = await loop.create_unix_connection(_StreamProtocol, path)
    return Stream(protocol, idle_timeout=idle_timeout, listener=None)


def _host_port(name: object) -> tuple[str, int]:
    """A socket's address as (host, port); a unix socket's (a path, or "") as (path, 0)."""
    if isinstance(name, tuple):
        return str(name[0]), int(name[1])
    return str(name or ""), 0


Handler = Callable[[Stream], Awaitable[None]]
Refusal = Callable[[Stream, str], bytes]


class Listener:
    """All sockets of one protocol: accepts, enforces connection caps, runs one handler task per client."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float,
        max_per_ip: int,
        max_total: int,
        refuse: Refusal,
    ) -> None:
        self.name = name
        self._handler = handler
        self._tls = tls
        self._idle_timeout = idle_timeout
        self._max_per_ip = max_per_ip
        self._max_total = max_total
        self._refuse = refuse
        self._servers: list[asyncio.Server] = []
        self._per_ip: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: set[Stream] = set()
        self.is_stopping = False

    async def bind(self, addresses: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        for address in addresses:
            host, port = parse_host_port(address)
            try:
                server = await loop.create_server(
                    self._make_protocol, host or None, port, ssl=self._tls, reuse_address=True, backlog=1024
                )
            except OSError as exc:
                raise OSError(exc.errno, f"{self.name}: cannot listen on {address}: {exc.strerror}") from exc
            self._servers.append(server)
            log.info("listening protocol=%s address=%s tls=%s", self.name, address, self._tls is not None)

    async def adopt(self, sockets: Sequence[socket.socket]) -> None:
        """Accept on listening sockets another process bound (an MX process, on the main one's port 25)."""
        loop = asyncio.get_running_loop()
        for sock in sockets:
            server = await loop.create_server(self._make_protocol, sock=sock, ssl=self._tls, backlog=1024)
            self._servers.append(server)
            log.info("accepting protocol=%s address=%s (the main process's socket)", self.name, sock.getsockname())

    @property
    def sockets(self) -> list[socket.socket]:
        return [sock for server in self._servers for sock in server.sockets]

    @property
    def ports(self) -> list[int]:
        return [int(sock.getsockname()[1]) for server in self._servers for sock in server.sockets]

    def _make_protocol(self) -> _StreamProtocol:
        # The handler starts once the connection (and an implicit TLS handshake) is made. A callback
        # passed in, not a closure set on the protocol: that closure made each connection a reference
        # cycle, left for the garbage collector (its passes took 28 µs per connection, 18 µs without).
        return _StreamProtocol(self._accept)

    def _accept(self, protocol: _StreamProtocol) -> None:
        stream = Stream(protocol, idle_timeout=self._idle_timeout, listener=self)
        ip = stream.peer_host
        reason = ""
        if self.is_stopping:
            reason = "shutting down"
        elif len(self._streams) >= self._max_total:
            reason = "too many connections"
        elif self._per_ip[ip] >= self._max_per_ip:
            reason = "too many connections from your address"
        if reason:
            log.warning("refused protocol=%s peer=%s reason=%s", self.name, ip, reason)
            stream.write(self._refuse(stream, reason))
            task = asyncio.ensure_future(stream.close())
        else:
            self._per_ip[ip] += 1
            self._streams.add(stream)
            task = asyncio.ensure_future(self._run(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, stream: Stream) -> None:
        try:
            await self._handler(stream)
        except (IdleTimeout, ShutdownRequested, ConnectionError):
            pass
        except Exception:
            log.exception("session crashed protocol=%s peer=%s", self.name, stream.peer_host)
        finally:
            self._streams.discard(stream)
            self._per_ip[stream.peer_host] -= 1
            if self._per_ip[stream.peer_host] <= 0:
                del self._per_ip[stream.peer_host]
            await stream.close()

    def stop_accepting(self) -> None:
        self.is_stopping = True
        for server in self._servers:
            server.close()
        for stream in list(self._streams):
            stream.interrupt_if_idle()

    async def finish(self, grace: float) -> None:
        """Wait up to `grace` seconds for sessions to end by themselves, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d sessions protocol=%s after %.0f s", len(pending), self.name, grace)
                await asyncio.wait(pending, timeout=5)
