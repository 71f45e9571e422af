"""The IMAP services for the composition root: ``imap`` (STARTTLS) and ``imaps`` (implicit TLS)."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Sequence

from pochta.config import Config
from pochta.net import Handler, Stream
from pochta.proto.imap import Limits
from pochta.store.api import Account, Blobs, Store

from .context import Context, Settings
from .recent import RecentClaims
from .session import Session


def handlers(
    *,
    store: Store,
    blobs: Blobs,
    config: Config,
    tls: ssl.SSLContext | None,
    failure_delay: float = 1.0,
    on_stored: Callable[[Sequence[Account], int], None] | None = None,
) -> dict[str, Handler]:
    """Handlers for the ``imap`` and ``imaps`` listeners (``imaps`` streams arrive with TLS up)."""
    settings = Settings(
        hostname=config.hostname,
        # One size limit for mail however it arrives: APPENDLIMIT (RFC 7889) is SMTP's SIZE.
        limits=Limits(max_append=config.smtp.max_message_size),
        tls=tls,
        failure_delay=failure_delay,
    )
    context = Context(store=store, blobs=blobs, settings=settings, recent=RecentClaims(started=settings.now()))
    if on_stored is not None:
        context = dataclasses.replace(context, on_stored=on_stored)

    async def imap(stream: Stream) -> None:
        await Session(stream, context=context).run()

    return {"imap": imap, "imaps": imap}
