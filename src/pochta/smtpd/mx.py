"""The MX (port 25): mail for our domains from anyone, nothing else from anyone unauthenticated.

Recipient problems known before the content (unknown user, relaying, full mailbox) are answered at
RCPT; after the content the message is stored for every accepted recipient in one commit, or for none.
"""

from __future__ import annotations

import logging

from pochta.accounts import resolve
from pochta.delivery import LocalDelivery, parse_spool
from pochta.mail.address import Address, AddressError, normalize_domain
from pochta.proto.smtp import Extensions, MailFrom, RcptTo, Reply
from pochta.smtpd.session import Session, Transaction, mailbox_full
from pochta.store.api import Blobs, Directory, OverQuota, StoreError

log = logging.getLogger(__name__)

RELAY_DENIED = "relay access denied"


class MxPolicy:
    adds_return_path = True
    extensions = Extensions()  # everything but AUTH; the session adds STARTTLS when it has a certificate

    def __init__(self, *, directory: Directory, delivery: LocalDelivery, blobs: Blobs, hostname: str) -> None:
        self._directory = directory
        self._delivery = delivery
        self._blobs = blobs
        self._hostname = hostname

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
        structure = await parse_spool(spool, self._blobs)
        blob = spool.ref
        try:
            stored, queued = await self._delivery.accept(
                list(transaction.copies.values()),
                transaction.remote,
                blob=spool,
                structure=structure,
                envelope=transaction.envelope(),
                received=transaction.started,
                now=transaction.started,
                account_id=None,
            )
        except OverQuota:
            return mailbox_full()
        except StoreError:
            log.exception("delivery failed id=%s", transaction.id)
            return Reply(code=451, status="4.3.0", text="could not store the message, try again later")
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
