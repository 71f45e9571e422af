"""The IMAP services for the composition root: ``imap`` (STARTTLS) and ``imaps`` (implicit TLS)."""

from __future__ import annotations

import ssl

from pochta.config import Config
from pochta.net import Handler, Stream
from pochta.proto.imap import Limits
from pochta.store.api import Blobs, Store

from .context import Context, Learner, Settings
from .recent import RecentClaims
from .session import Session


def handlers(
    *,
    store: Store,
    blobs: Blobs,
    config: Config,
    tls: ssl.SSLContext | None,
    failure_delay: float = 1.0,
    learner: Learner | None = None,
) -> dict[str, Handler]:
    """Handlers for the ``imap`` and ``imaps`` listeners (``imaps`` streams arrive with TLS up)."""
    settings = Settings(
        hostname=config.hostname,
        # One size limit for mail however it arrives: APPENDLIMIT (RFC 7889) is SMTP's SIZE.
        limits=Limits(max_append=config.smtp.max_message_size),
        tls=tls,
        failure_delay=failure_delay,
    )
    context = Context(
        store=store, blobs=blobs, settings=settings, recent=RecentClaims(started=settings.now()), learner=learner
    )

    async def imap(stream: Stream) -> None:
        await Session(stream, context=context).run()

    return {"imap": imap, "imaps": imap}
