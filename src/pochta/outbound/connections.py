"""Open SMTP connections kept for the next message to the same place, as Postfix's connection cache does.

A connection whose transaction ended cleanly (every reply read, no 421) goes back here instead of
saying QUIT; the next delivery with the same key takes it, sends RSET (RFC 5321 §4.1.1.5) and goes on
with MAIL. The key is everything the connection was opened under: the host name, its address and
port, and the TLS and login requirements, so a connection is never reused for a route that asks more
of it (an MTA-STS route needs a verified one; a smarthost one that logged in).

Limits, named after Postfix's settings:
- ``idle_time_limit`` (smtp_connection_cache_time_limit, 2 s): an unused connection says QUIT;
- ``reuse_time_limit`` (smtp_connection_reuse_time_limit, 300 s): a connection is not reused past this age;
- ``max_uses`` (smtp_connection_reuse_count_limit): transactions per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

from pochta.net import Stream
from pochta.proto.smtp.client import ClientConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheLimits:
    max_uses: int = 100  # transactions per connection; 1 turns the cache off
    reuse_time_limit: float = 300.0  # seconds since the connection was opened
    idle_time_limit: float = 2.0  # seconds a connection may wait here unused; 0 turns the cache off


@dataclass(slots=True, kw_only=True, eq=False)
class Session:
    """An open connection past its greeting (EHLO, STARTTLS and AUTH done), ready for a transaction."""

    key: Hashable
    stream: Stream
    conn: ClientConnection
    opened: float  # loop time
    uses: int = 0  # transactions finished on it
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _records: set[asyncio.Future[None]] = field(default_factory=set, repr=False)  # answers being recorded

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """While the answers of a transaction made on this session are recorded: QUIT waits until they are,
        so a remote's 250 is always durable here before the remote sees us go."""
        done = asyncio.get_running_loop().create_future()
        self._records.add(done)
        try:
            yield
        finally:
            self._records.discard(done)
            done.set_result(None)

    @property
    def is_clean(self) -> bool:
        """Between transactions: every reply read, not closed by either side, nothing unread."""
        stream = self.stream
        return not self.conn.is_closed and not self.conn.pending and stream.is_open and not stream.has_unread_data

    async def close(self) -> None:
        """QUIT once every answer given on this session is recorded (without waiting for the 221), and close."""
        if self._records:
            await asyncio.wait(set(self._records))
        if not self.conn.is_closed and self.stream.is_open:
            with contextlib.suppress(Exception):
                self.stream.write(self.conn.quit())
        await self.stream.close()


class ConnectionCache:
    """Idle sessions by key, the most recently used first out (so extra ones age out)."""

    def __init__(self, limits: CacheLimits = CacheLimits()) -> None:
        self._limits = limits
        self._idle: dict[Hashable, list[Session]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._is_closed = False
        self.reused = 0  # sessions handed out again (for logs and tests)

    @property
    def is_enabled(self) -> bool:
        return self._limits.max_uses > 1 and self._limits.idle_time_limit > 0

    def __len__(self) -> int:
        return sum(len(sessions) for sessions in self._idle.values())

    def take(self, key: Hashable) -> Session | None:
        """A kept session for `key` that is still fit for use, or None. Unfit ones are closed."""
        sessions = self._idle.get(key)
        while sessions:
            session = sessions.pop()
            if not sessions:
                del self._idle[key]
            if session._timer is not None:
                session._timer.cancel()
                session._timer = None
            if self._is_fit(session):
                self.reused += 1
                return session
            self._close_later(session)
        return None

    def give_back(self, session: Session) -> None:
        """Keep `session` after a finished transaction, or close it when it may not be reused."""
        session.uses += 1
        if self._is_closed or not self.is_enabled or not self._is_fit(session):
            self._close_later(session)
            return
        loop = asyncio.get_running_loop()
        session._timer = loop.call_later(self._limits.idle_time_limit, self._expire, session)
        self._idle.setdefault(session.key, []).append(session)

    def discard(self, session: Session) -> None:
        """Close a session that failed its reuse (the remote closed it or answered RSET with no 250)."""
        self._close_later(session)

    async def close(self) -> None:
        """QUIT every kept connection and wait (a few seconds at most) until they are closed."""
        self._is_closed = True
        for sessions in self._idle.values():
            for session in sessions:
                if session._timer is not None:
                    session._timer.cancel()
                self._close_later(session)
        self._idle.clear()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=10)

    def _is_fit(self, session: Session) -> bool:
        limits = self._limits
        age = asyncio.get_running_loop().time() - session.opened
        return session.uses < limits.max_uses and age < limits.reuse_time_limit and session.is_clean

    def _expire(self, session: Session) -> None:
        session._timer = None
        sessions = self._idle.get(session.key, [])
        if session in sessions:
            sessions.remove(session)
            if not sessions:
                del self._idle[session.key]
        self._close_later(session)

    def _close_later(self, session: Session) -> None:
        task = asyncio.ensure_future(self._close(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, session: Session) -> None:
        try:
            await session.close()
        except Exception:  # a connection that will not close cleanly is gone anyway
            log.debug("closing a kept connection failed", exc_info=True)
