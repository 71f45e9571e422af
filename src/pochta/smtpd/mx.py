"""The MX (port 25): mail for our domains from anyone, nothing else from anyone unauthenticated.

Recipient problems known before the content (unknown user, relaying, full mailbox) are answered at
RCPT; after the content the message is stored for every accepted recipient in one commit, or for none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import mmap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pochta.accounts import resolve
from pochta.delivery import LocalCopy, LocalDelivery, Outgoing, parse_spool
from pochta.filters.pipeline import ACCEPTED, Action, Outcome, Pipeline
from pochta.mail.address import Address, AddressError, normalize_domain
from pochta.mail.headers import field_spans
from pochta.mailauth.results import forged_fields
from pochta.proto.smtp import Extensions, MailFrom, RcptTo, Reply
from pochta.sieving import Context, Plan, Sieving
from pochta.smtpd.session import Session, Transaction, inbound, mailbox_full
from pochta.store.api import Blobs, BlobWriter, Directory, OverQuota, SpecialUse, StoreError

log = logging.getLogger(__name__)

RELAY_DENIED = "relay access denied"


class MxPolicy:
    adds_return_path = True
    extensions = Extensions()  # everything but AUTH; the session adds STARTTLS when it has a certificate

    def __init__(
        self,
        *,
        directory: Directory,
        delivery: LocalDelivery,
        blobs: Blobs,
        hostname: str,
        pipeline: Pipeline | None = None,
        sieving: Sieving | None = None,
    ) -> None:
        self._directory = directory
        self._delivery = delivery
        self._blobs = blobs
        self._hostname = hostname
        self._pipeline = pipeline or Pipeline()
        self._sieving = sieving

    async def mail_from(self, session: Session, event: MailFrom) -> Reply:
        # Any sender may send to our users; SPF/DKIM/DMARC judge the sender later (inbound protection).
        sender = f"<{event.path}>" if event.path else "<>"
        return Reply(code=250, status="2.1.0", text=f"{sender} sender ok")

    async def rcpt_to(self, session: Session, transaction: Transaction, event: RcptTo) -> Reply:
        address: Address | None = event.path
        if event.is_bare_postmaster:  # RFC 5321 §4.5.1: <Postmaster> must be accepted
            address = await self._postmaster()
        shown = "<Postmaster>" if event.is_bare_postmaster else f"<{event.path}>"
        resolution = await resolve(self._directory, address) if address is not None else None
        if address is None or (resolution is not None and not resolution.is_local):
            return Reply(code=554, status="5.7.1", text=f"{shown}: {RELAY_DENIED}")
        if resolution is None:
            return Reply(code=550, status="5.1.1", text=f"{shown}: no such user here")
        if not resolution.accounts and not resolution.forwards:  # an alias that leads nowhere (a loop)
            return Reply(code=550, status="5.1.1", text=f"{shown}: no such user here")
        if transaction.is_over_quota(resolution):
            return mailbox_full(shown)
        transaction.add_recipient(event, resolution)
        return Reply(code=250, status="2.1.5", text=f"{shown} recipient ok")

    async def _postmaster(self) -> Address | None:
        try:
            domain = normalize_domain(self._hostname)
        except AddressError:
            domain = ""
        domains = [d.name for d in await self._directory.list_domains()]
        if not domains:
            return None
        return Address("postmaster", domain if domain in domains else domains[0])

    async def deliver(self, session: Session, transaction: Transaction, size: int) -> Reply:
        spool = transaction.spool
        assert spool is not None
        outcome = ACCEPTED
        if self._pipeline:
            outcome, spool = await self._checked(session, transaction, spool)
            transaction.spool = spool
        if outcome.reply is not None:
            return outcome.reply  # the session drops the spool
        copies = [_placed(copy, outcome) for copy in transaction.copies.values()]
        try:
            plan = await self._sieve(session, transaction, spool, copies, outcome) if copies and self._sieving else None
        except StoreError:
            log.exception("sieve failed id=%s", transaction.id)
            return Reply(code=451, status="4.3.0", text="could not store the message, try again later")
        if plan is not None:
            if plan.reject is not None:
                return plan.reject  # RFC 5429 §2.1: the one recipient's script refused it; the session drops the spool
            copies = plan.copies
        outgoing = plan.outgoing if plan is not None else []
        structure = await parse_spool(spool, self._blobs) if copies else b""
        blob = spool.ref
        try:
            stored, queued = await self._delivery.accept(
                copies,
                transaction.remote,
                blob=spool,
                structure=structure,
                envelope=transaction.envelope(),
                received=transaction.started,
                now=transaction.started,
                account_id=None,
                outgoing=outgoing,
            )
        except OverQuota:
            _abort(outgoing)
            return mailbox_full()
        except StoreError:
            _abort(outgoing)
            log.exception("delivery failed id=%s", transaction.id)
            return Reply(code=451, status="4.3.0", text="could not store the message, try again later")
        if plan is not None and self._sieving is not None:
            await self._sieving.record(plan)
        log.info(
            "smtp delivered id=%s from=<%s> rcpts=%d copies=%d forwarded=%d size=%d peer=%s",
            transaction.id,
            transaction.mail.path or "",
            len(transaction.recipients),
            stored,
            len(queued),
            blob.size,
            session.stream.peer_host,
        )
        return Reply(code=250, status="2.0.0", text=f"OK id={transaction.id}")

    async def _sieve(
        self, session: Session, transaction: Transaction, spool: BlobWriter, copies: list[LocalCopy], outcome: Outcome
    ) -> Plan:
        assert self._sieving is not None
        async with self._content(spool) as content:
            return await self._sieving.plan(
                copies,
                Context(
                    id=transaction.id,
                    content=content,
                    envelope=transaction.envelope(),
                    facts=outcome.facts,
                    remote_ip=session.stream.peer_host,
                ),
            )

    async def _checked(
        self, session: Session, transaction: Transaction, spool: BlobWriter
    ) -> tuple[Outcome, BlobWriter]:
        """The pipeline's outcome and the spool to store, read once: a new spool when the checks add
        headers (after the trace headers) or the message carries verdict fields that claim to be ours
        (RFC 8601 §5: a sender could forge Authentication-Results, or X-Spam-* that Sieve reads)."""
        trace_length = transaction.trace_length
        async with self._content(spool) as content:
            outcome = await self._pipeline.run(inbound(session, transaction, content))
            if outcome.reply is not None:
                return outcome, spool
            forged = self._forged(content, trace_length, outcome)
            if forged:
                log.info("dropped forged verdict fields id=%s count=%d", transaction.id, len(forged))
            if not outcome.headers and not forged:
                return outcome, spool
            fresh = self._blobs.create()
            fresh.write(content[:trace_length])
            fresh.write(outcome.header_block())
            position = trace_length
            for start, end in [*forged, (len(content), len(content))]:
                for chunk in range(position, start, _COPY_CHUNK):
                    fresh.write(content[chunk : min(chunk + _COPY_CHUNK, start)])
                position = end
        spool.abort()
        return outcome, fresh

    def _forged(self, content: bytes | mmap.mmap, trace_length: int, outcome: Outcome) -> list[tuple[int, int]]:
        """Where the message's own header has fields of the kinds our checks add."""
        added = {name.lower() for name, _ in outcome.headers}
        if "authentication-results" not in added and "x-spam-status" not in added:
            return []
        end = content.find(b"\r\n\r\n", trace_length, trace_length + _MAX_HEADER_BLOCK)
        block = content[trace_length : end + 2 if end >= 0 else trace_length + _MAX_HEADER_BLOCK]
        spans = forged_fields(block, self._hostname) if "authentication-results" in added else []
        if "x-spam-status" in added:
            spans = sorted({*spans, *field_spans(block, _SPAM_FIELDS)})
        return [(trace_length + a, trace_length + b) for a, b in spans]

    @asynccontextmanager
    async def _content(self, spool: BlobWriter) -> AsyncIterator[bytes | mmap.mmap]:
        """The message for the checks: in memory when small, else its spill file mapped. Nothing is made
        durable before the verdict, so a refused message leaves no blob behind."""
        content = spool.in_memory()
        if content is not None:
            yield content
            return
        path = spool.spilled() or self._blobs.path((await spool.commit()).id)
        handle = await asyncio.to_thread(open, path, "rb")
        with handle:
            if spool.ref.size == 0:
                yield b""
                return
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped


_COPY_CHUNK = 1 << 20
_SPAM_FIELDS = ("X-Spam-Status", "X-Spam-Score", "X-Spam-Flag", "X-Spam-Level")
_MAX_HEADER_BLOCK = 1 << 20  # searched for forged fields; the session refuses larger header blocks anyway


def _abort(outgoing: list[Outgoing]) -> None:
    for message in outgoing:
        message.blob.abort()


def _placed(copy: LocalCopy, outcome: Outcome) -> LocalCopy:
    if outcome.action is Action.JUNK or copy.account.id in outcome.junk_accounts:
        return dataclasses.replace(copy, special_use=SpecialUse.JUNK)
    return copy
