"""Quota warnings: one message in the user's INBOX when their mailbox passes the warning level (90 % by
default), sent once until usage drops below the level again (then it may be sent again).

Checked right after each delivery or IMAP APPEND that may have crossed the level (LocalDelivery.on_stored,
imapd Context.on_stored) and on every run of the retention task (which catches the rest: COPY, restores).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from email.utils import format_datetime

from pochta.mail.mime import parse_message
from pochta.store.api import INBOX, Account, Blobs, NewMessage, Store

log = logging.getLogger(__name__)


def warning_message(account: Account, *, hostname: str, percent: int, now: datetime) -> bytes:
    """The warning's octets (RFC 5322; Auto-Submitted per RFC 3834 so no one auto-replies to it)."""
    used_mib = account.used_bytes / 2**20
    quota_mib = account.quota_bytes / 2**20
    domain = account.address.rpartition("@")[2]
    filled = 100 * account.used_bytes // account.quota_bytes if account.quota_bytes else 0
    lines = [
        f"From: Mail System <postmaster@{domain}>",
        f"To: <{account.address}>",
        f"Subject: Your mailbox is {filled}% full",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <quota.{secrets.token_hex(8)}@{hostname}>",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Your mailbox {account.address} uses {used_mib:.1f} MiB of its {quota_mib:.1f} MiB,",
        f"more than {percent}%.",
        "",
        "When it is full, new mail to you is refused (the sender is told to try later) and your",
        "mail program cannot save messages. Delete messages you no longer need, and empty Trash.",
        "",
    ]
    return "\r\n".join(lines).encode()


class QuotaWarnings:
    def __init__(self, store: Store, blobs: Blobs, *, hostname: str, percent: int, now: Callable[[], datetime]) -> None:
        self._store = store
        self._blobs = blobs
        self._hostname = hostname
        self._percent = percent
        self._now = now
        self._tasks: set[asyncio.Task[int]] = set()

    @property
    def ratio(self) -> float:
        return self._percent / 100

    def on_stored(self, accounts: Iterable[Account], size: int) -> None:
        """After a delivery: check, in the background, the accounts the new message may have pushed over."""
        if not self._percent:
            return
        if any(a.quota_bytes and a.used_bytes + size >= a.quota_bytes * self.ratio for a in accounts):
            task = asyncio.ensure_future(self.check())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def check(self) -> int:
        """Warn every account due; forget the warnings of accounts back below the level. Returns how many warned."""
        if not self._percent:
            return 0
        await self._store.clear_quota_warnings(ratio=self.ratio)
        warned = 0
        for account in await self._store.quota_warnings_due(ratio=self.ratio):
            inbox = await self._store.get_mailbox(account.id, INBOX)
            if inbox is None:
                continue
            now = self._now()
            content = warning_message(account, hostname=self._hostname, percent=self._percent, now=now)
            ref = await self._blobs.put(content)
            message = NewMessage(
                account_id=account.id,
                mailbox_id=inbox.id,
                blob_id=ref.id,
                size=ref.size,
                structure=parse_message(content).dumps(),
                internal_date=now,
            )
            if await self._store.add_quota_warning(message, ratio=self.ratio, now=now) is not None:
                warned += 1
                log.info("quota warning sent user=%s used=%d quota=%d", account.address, account.used_bytes,
                         account.quota_bytes)  # fmt: skip
        return warned

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
