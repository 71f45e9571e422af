"""Local delivery: a durable blob, parsed once, appended to every recipient account's mailbox in one commit.

Each copy says where it goes: INBOX by default, the account's Junk mailbox when the spam verdict says
so, or a folder a Sieve script chose (with its flags). Redirects and vacation replies go to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pochta.accounts import resolve
from pochta.mail.address import AddressError, parse_address
from pochta.mail.envelope import Envelope, Recipient
from pochta.mail.mime import parse_message
from pochta.queue.dsn import Report
from pochta.store.api import (
    INBOX,
    Account,
    Appended,
    Blobs,
    BlobWriter,
    Directory,
    Mailboxes,
    NewMessage,
    NotFound,
    QueueItem,
    QueueStore,
    SpecialUse,
    StoreError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalCopy:
    """One account's copy and the envelope recipients that led to it (several aliases may meet)."""

    account: Account
    recipients: tuple[Recipient, ...]
    mailbox: str = INBOX  # a mailbox name (a missing one falls back to INBOX, so nothing is lost)
    special_use: SpecialUse | None = None  # when set, the account's mailbox with this role (e.g. Junk)
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A generated message (a redirect, a vacation reply, a notice) stored in the same commit as the
    message that caused it: copies for local recipients, a queue entry per domain for the others."""

    blob: BlobWriter
    structure: bytes  # its MIME parse, for the local copies (b"" when there are none)
    envelope: Envelope
    local: tuple[LocalCopy, ...] = ()
    remote: tuple[Recipient, ...] = ()


def parse_blob(writer: BlobWriter) -> bytes | None:
    """The MIME parse of a blob still in memory (before commit), or None when it is on disk."""
    content = writer.in_memory()
    return parse_message(content).dumps() if content is not None else None


async def parse_spool(writer: BlobWriter, blobs: Blobs) -> bytes:
    """The MIME parse of a message being stored: in memory when small, else (spilled to disk) made
    durable first and memory-mapped, so a large message is never read whole."""
    structure = parse_blob(writer)
    if structure is not None:
        return structure
    ref = await writer.commit()
    return await asyncio.to_thread(parse_file, blobs.path(ref.id))


def parse_file(path: str) -> bytes:
    """The stored MIME parse of a blob file (mapped, so a large message is never read whole)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return parse_message(b"").dumps()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return parse_message(mapped).dumps()


class Journaling(Protocol):
    """Keeps a compliance copy of an accepted message (archive.journal.Journal); raises StoreError if it cannot."""

    async def __call__(
        self, envelope: Envelope, blob: BlobWriter, *, received: datetime, is_outgoing: bool
    ) -> None: ...


class LocalDelivery:
    def __init__(self, mailboxes: Mailboxes, *, queue: QueueStore | None = None) -> None:
        self._mailboxes = mailboxes
        self._queue = queue
        self.on_queued: Callable[[], None] = lambda: None  # wakes the queue runner
        self.journal: Journaling | None = None  # written before the message is stored, so before the 250
        # after local copies are stored: the accounts (as they were before) and the size (quota warnings)
        self.on_stored: Callable[[Sequence[Account], int], None] = lambda accounts, size: None
        self._inbox_ids: dict[int, int] = {}  # account id → INBOX id; INBOX is never deleted or renamed away

    async def _inbox(self, account_id: int) -> int:
        cached = self._inbox_ids.get(account_id)
        if cached is not None:
            return cached
        mailbox = await self._mailboxes.get_mailbox(account_id, INBOX)
        if mailbox is None:
            raise NotFound(f"account {account_id} has no INBOX")
        self._inbox_ids[account_id] = mailbox.id
        return mailbox.id

    async def mailbox_id(self, copy: LocalCopy) -> int:
        """Where a copy goes; INBOX when the chosen mailbox does not exist (renamed or deleted by the user)."""
        account_id = copy.account.id
        if copy.special_use is not None:
            for mailbox in await self._mailboxes.list_mailboxes(account_id):
                if mailbox.special_use is copy.special_use:
                    return mailbox.id
        elif copy.mailbox != INBOX:
            found = await self._mailboxes.get_mailbox(account_id, copy.mailbox)
            if found is not None:
                return found.id
        return await self._inbox(account_id)

    async def messages(
        self,
        copies: Sequence[LocalCopy],
        *,
        blob: BlobWriter,
        structure: bytes,
        envelope: Envelope,
        received: datetime,
    ) -> list[NewMessage]:
        """One copy per account in the mailbox it chose, ready for `Mailboxes.append` or `QueueStore.enqueue`."""
        ref = blob.ref
        return [
            NewMessage(
                account_id=copy.account.id,
                mailbox_id=await self.mailbox_id(copy),
                blob_id=ref.id,
                size=ref.size,
                structure=structure,
                flags=copy.flags,
                internal_date=received,
                envelope=envelope.only(copy.recipients).dumps(),
            )
            for copy in copies
        ]

    async def deliver(
        self,
        copies: Sequence[LocalCopy],
        *,
        blob: BlobWriter,
        structure: bytes,
        envelope: Envelope,
        received: datetime,
    ) -> list[Appended]:
        """Make the blob durable and store one copy per account, all or none, in one round trip to the
        store (OverQuota, NotFound, StoreError propagate)."""
        messages = await self.messages(copies, blob=blob, structure=structure, envelope=envelope, received=received)
        try:
            return await self._mailboxes.append(messages, blobs=[blob])
        except NotFound:
            self._inbox_ids.clear()  # an account went away meanwhile; look again next time
            raise

    async def accept(
        self,
        copies: Sequence[LocalCopy],
        remote: Sequence[Recipient],
        *,
        blob: BlobWriter,
        structure: bytes,
        envelope: Envelope,
        received: datetime,
        now: datetime,
        account_id: int | None,
        outgoing: Sequence[Outgoing] = (),
    ) -> tuple[int, list[int]]:
        """Local copies, queue entries for `remote` recipients (one per domain) and the `outgoing`
        generated messages, in one commit. Returns how many local copies were stored and the queue ids.
        A blob nothing refers to (every script discarded the message) is dropped, not stored; the
        compliance journal still records it."""
        if self.journal is not None:
            await self.journal(envelope, blob, received=received, is_outgoing=account_id is not None)
        if not copies and not remote:
            blob.abort()
            if not any(message.local or message.remote for message in outgoing):
                for message in outgoing:
                    message.blob.abort()
                return 0, []
        if not remote and not outgoing:
            stored = await self.deliver(copies, blob=blob, structure=structure, envelope=envelope, received=received)
            self.on_stored([copy.account for copy in copies], blob.ref.size)
            return len(stored), []
        if self._queue is None:
            raise StoreError("no outbound queue")
        items = _queue_items(remote, blob=blob, envelope=envelope, account_id=account_id)
        local = await self.messages(copies, blob=blob, structure=structure, envelope=envelope, received=received)
        blobs = [blob] if copies or items else []
        for message in outgoing:
            items += _queue_items(message.remote, blob=message.blob, envelope=message.envelope, account_id=None)
            local += await self.messages(
                message.local,
                blob=message.blob,
                structure=message.structure,
                envelope=message.envelope,
                received=now,
            )
            if message.local or message.remote:
                blobs.append(message.blob)
            else:
                message.blob.abort()
        ids = await self._queue.enqueue(items, now=now, local=local, blobs=blobs)
        if items:
            self.on_queued()
        if copies:
            self.on_stored([copy.account for copy in copies], blob.ref.size)
        return len(local), ids


def _queue_items(
    recipients: Sequence[Recipient], *, blob: BlobWriter, envelope: Envelope, account_id: int | None
) -> list[QueueItem]:
    ref = blob.ref
    by_domain: dict[str, list[Recipient]] = {}
    for recipient in recipients:
        by_domain.setdefault(recipient.address.rpartition("@")[2], []).append(recipient)
    return [
        QueueItem(
            blob_id=ref.id,
            size=ref.size,
            envelope=envelope.only(tuple(group)).dumps(),
            domain=domain,
            account_id=account_id,
        )
        for domain, group in by_domain.items()
    ]


class NoticeSender:
    """Makes a generated message (a DSN today; vacation replies later) durable for its recipient:
    local accounts get it at once, others through the queue, sent from the null reverse-path."""

    def __init__(
        self,
        *,
        directory: Directory,
        queue: QueueStore,
        blobs: Blobs,
        delivery: LocalDelivery,
        now: Callable[[], datetime],
        on_queued: Callable[[], None],
    ) -> None:
        self._directory = directory
        self._queue = queue
        self._blobs = blobs
        self._delivery = delivery
        self._now = now
        self._on_queued = on_queued

    async def __call__(self, report: Report) -> None:
        try:
            address = parse_address(report.recipient)
        except AddressError:
            log.warning("notice dropped: bad recipient %r", report.recipient)
            return
        resolution = await resolve(self._directory, address)
        if resolution is None:
            log.warning("notice dropped: no local user %s", address)
            return
        writer = self._blobs.create()
        writer.write(report.content)
        structure = parse_blob(writer) or parse_message(report.content).dumps()
        recipient = Recipient(address=str(address), notify=("NEVER",))  # RFC 3461 §6.2: no DSN about a DSN
        envelope = Envelope(
            mail_from="",
            recipients=(recipient,),
            body="8BITMIME" if report.is_8bit else None,
            is_smtputf8=report.is_smtputf8,
        )
        now = self._now()
        local = await self._delivery.messages(
            [LocalCopy(account=a, recipients=(recipient,)) for a in resolution.accounts],
            blob=writer,
            structure=structure,
            envelope=envelope,
            received=now,
        )
        ref = writer.ref
        items = [
            QueueItem(
                blob_id=ref.id,
                size=ref.size,
                envelope=envelope.only((Recipient(address=str(f), notify=("NEVER",)),)).dumps(),
                domain=f.domain,
                account_id=None,
            )
            for f in resolution.forwards
        ]
        await self._queue.enqueue(items, now=now, local=local, blobs=[writer])
        if items:
            self._on_queued()
