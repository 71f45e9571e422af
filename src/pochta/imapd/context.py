"""What every IMAP session shares: the store, the blobs and the settings; and where responses go."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pochta.proto.imap import Limits, Response
from pochta.store.api import Account, Blobs, Store

from .recent import RecentClaims


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    hostname: str
    limits: Limits = field(default_factory=Limits)
    tls: ssl.SSLContext | None = None  # offered with STARTTLS when the stream is not TLS already
    failure_delay: float = 1.0  # seconds before answering a failed login (slows guessing)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    store: Store
    blobs: Blobs
    settings: Settings
    recent: RecentClaims  # shared by every session of the process
    # after APPEND stored messages: the account (as it was before) and the octets added (quota warnings)
    on_stored: Callable[[Sequence[Account], int], None] = lambda accounts, size: None


class Output(Protocol):
    """The session's side of the connection: responses are written in order, drained now and then."""

    def send(self, response: Response) -> None: ...

    def write(self, data: bytes) -> None:
        """Wire bytes of an untagged response the session renders itself (a streamed FETCH)."""
        ...

    async def drain(self) -> None: ...
