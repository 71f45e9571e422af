"""Submission (587 with STARTTLS, 465 over TLS; RFC 6409): our users' outgoing mail.

AUTH first; the envelope sender and every From: address must be the user's own (their address, a
+tag of it, or an alias that delivers to them), else 553 5.7.1. Message-ID and Date are added when
missing and Bcc is removed (RFC 6409 §8). Local recipients get their copy at once; remote ones go to
the outbound queue, in the same commit, before the 250.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime

from pochta.accounts import resolve
from pochta.delivery import LocalDelivery, parse_spool
from pochta.filters.pipeline import Pipeline
from pochta.mail.address import Address, AddressError, parse_address
from pochta.mail.addresslist import parse_address_list
from pochta.mail.headers import fields
from pochta.mailauth.dkim import Algorithm, SigningKey, sign
from pochta.proto import sasl
from pochta.proto.smtp import Extensions, MailFrom, RcptTo, Reply, replies
from pochta.sieving import Context, Sieving
from pochta.smtpd.session import Session, Transaction, inbound, mailbox_full
from pochta.store.api import Account, Blobs, BlobWriter, Directory, OverQuota, StoreError

log = logging.getLogger(__name__)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
NOT_OWNED = "not an address of the authenticated user"


class SubmissionPolicy:
    adds_return_path = False
    extensions = Extensions(auth_mechanisms=sasl.MECHANISMS, is_auth_tls_only=True)  # RFC 8314 §3

    def __init__(
        self,
        *,
        directory: Directory,
        delivery: LocalDelivery,
        blobs: Blobs,
        hostname: str,
        now: Callable[[], datetime],
        pipeline: Pipeline | None = None,
        sieving: Sieving | None = None,
    ) -> None:
        self._pipeline = pipeline or Pipeline()  # outgoing checks (the virus scan); their headers are not added
        self._sieving = sieving  # local recipients' scripts run on mail from our users too
        self._directory = directory
        self._delivery = delivery
        self._blobs = blobs
        self._hostname = hostname
        self._now = now

    async def _owns(self, account: Account, address: Address) -> bool:
        if str(address) == account.address:
            return True
        resolution = await resolve(self._directory, address)
        return resolution is not None and any(a.id == account.id for a in resolution.accounts)

    async def mail_from(self, session: Session, event: MailFrom) -> Reply:
        account = session.authenticated_as
        if account is None:
            return replies.AUTH_REQUIRED  # RFC 6409 §4.3
        if event.path is not None and not await self._owns(account, event.path):
            return Reply(code=553, status="5.7.1", text=f"<{event.path}>: {NOT_OWNED}")
        sender = f"<{event.path}>" if event.path else "<>"
        return Reply(code=250, status="2.1.0", text=f"{sender} sender ok")

    async def rcpt_to(self, session: Session, transaction: Transaction, event: RcptTo) -> Reply:
        shown = f"<{event.path}>"
        resolution = await resolve(self._directory, event.path)
        if resolution is None:
            return Reply(code=550, status="5.1.1", text=f"{shown}: no such user here")
        if transaction.is_over_quota(resolution):
            return mailbox_full(shown)
        transaction.add_recipient(event, resolution)
        return Reply(code=250, status="2.1.5", text=f"{shown} recipient ok")

    async def deliver(self, session: Session, transaction: Transaction, size: int) -> Reply:
        account = session.authenticated_as
        spool = transaction.spool
        assert account is not None and spool is not None
        content = spool.in_memory()
        if content is None:
            await spool.commit()
            content = await self._blobs.read(spool.ref.id)  # header fixes need it whole (as DKIM will)
        header_end = _HEADER_END.search(content)
        split = header_end.end() if header_end else len(content)
        header, body = content[:split], content[split:]
        signing_domain = None
        for name, value in fields(header):
            if name.lower() in (b"from", b"sender") and not await self._header_owned(account, value):
                return Reply(code=553, status="5.7.1", text=f"{name.decode(errors='replace')}: {NOT_OWNED}")
            if name.lower() == b"from" and signing_domain is None:
                signing_domain = _first_domain(value)
        message = _fixed_header(header, hostname=self._hostname, date=transaction.started) + body
        if signing_domain is None and transaction.mail.path is not None:
            signing_domain = transaction.mail.path.domain
        keys = await self._directory.dkim_keys(signing_domain) if signing_domain else []
        if keys:  # RFC 6376: d= is the From domain, so DMARC aligns
            signing = [
                SigningKey(
                    domain=k.domain,
                    selector=k.selector,
                    algorithm=Algorithm(k.algorithm),
                    private_key=k.private_key,
                    public_key=k.public_key,
                )
                for k in keys
            ]
            message = await asyncio.to_thread(sign, message, signing) + message
        if self._pipeline:
            outcome = await self._pipeline.run(inbound(session, transaction, message))
            if outcome.reply is not None:
                return outcome.reply
        fixed = self._blobs.create()
        fixed.write(message)
        return await self._store(session, transaction, fixed, account, message)

    async def _header_owned(self, account: Account, value: bytes) -> bool:
        for item in parse_address_list(value):
            if item.mailbox is None or item.host is None:
                continue  # group syntax markers
            try:
                address = parse_address(f"{item.mailbox.decode()}@{item.host.decode()}")
            except (AddressError, UnicodeDecodeError):
                return False
            if not await self._owns(account, address):
                return False
        return True

    async def _store(
        self, session: Session, transaction: Transaction, blob: BlobWriter, account: Account, message: bytes
    ) -> Reply:
        envelope = transaction.envelope()
        copies = list(transaction.copies.values())
        plan = None
        if copies and self._sieving is not None:
            try:
                plan = await self._sieving.plan(
                    copies, Context(id=transaction.id, content=message, envelope=envelope, facts={}, remote_ip="")
                )
            except StoreError:
                log.exception("sieve failed id=%s", transaction.id)
                return Reply(code=451, status="4.3.0", text="could not store the message, try again later")
            if plan.reject is not None:
                return plan.reject
            copies = plan.copies
        outgoing = plan.outgoing if plan is not None else []
        structure = await parse_spool(blob, self._blobs) if copies else b""
        ref = blob.ref
        try:
            stored, ids = await self._delivery.accept(
                copies,
                transaction.remote,
                blob=blob,
                structure=structure,
                envelope=envelope,
                received=transaction.started,
                now=self._now(),
                account_id=account.id,
                outgoing=outgoing,
            )
        except OverQuota:
            for generated in outgoing:
                generated.blob.abort()
            return mailbox_full()
        except StoreError:
            for generated in outgoing:
                generated.blob.abort()
            log.exception("submission failed id=%s", transaction.id)
            return Reply(code=451, status="4.3.0", text="could not store the message, try again later")
        if plan is not None and self._sieving is not None:
            await self._sieving.record(plan)
        log.info(
            "submission accepted id=%s user=%s rcpts=%d local=%d queued=%s size=%d",
            transaction.id,
            account.address,
            len(transaction.recipients),
            stored,
            ",".join(map(str, ids)),
            ref.size,
        )
        return Reply(code=250, status="2.0.0", text=f"OK id={transaction.id}")


def _first_domain(value: bytes) -> str | None:
    for item in parse_address_list(value):
        if item.host:
            try:
                return parse_address(f"x@{item.host.decode()}").domain
            except (AddressError, UnicodeDecodeError):
                return None
    return None


def _fixed_header(header: bytes, *, hostname: str, date: datetime) -> bytes:
    """RFC 6409 §8: drop Bcc, add Date and Message-ID when the client did not."""
    names = {name.lower() for name, _ in fields(header)}
    kept = _drop_fields(header, b"bcc")
    blank = b"\r\n" if kept.endswith(b"\r\n\r\n") else b"\n" if kept.endswith(b"\n\n") else b""
    added = b""
    if b"date" not in names:
        added += f"Date: {format_datetime(date)}\r\n".encode()
    if b"message-id" not in names:
        added += f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n".encode()
    return kept[: len(kept) - len(blank)] + added + blank  # after the client's fields, before the blank line


def _drop_fields(header: bytes, name: bytes) -> bytes:
    out: list[bytes] = []
    dropping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a continuation belongs to the field before it
            if not dropping:
                out.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() == name
        if not dropping:
            out.append(line)
    return b"".join(out)
