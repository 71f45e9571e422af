"""Which session holds ``\\Recent`` for which message (IMAP4rev1, RFC 3501 §2.3.2; IMAP4rev2 has none).

A message is recent for the first read-write session that sees it, and for no other. Every IMAP
session of the process shares one :class:`RecentClaims`: per mailbox, the highest UID some session
has claimed. The store keeps no such mark, so a mailbox this process has not seen yet starts at the
last message saved before the process started: after a restart old mail is not recent again, and
mail delivered meanwhile is recent for the first session that opens the mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pochta.store.api import Mailbox, Message


class RecentClaims:
    def __init__(self, *, started: datetime) -> None:
        self.started = started.replace(microsecond=0)  # the store keeps SAVEDATE in whole seconds
        # (mailbox id, UIDVALIDITY) → highest UID some session saw as \\Recent; with UIDVALIDITY
        # because a mailbox created again may get the id of a deleted one, and its UIDs start anew
        self._claimed: dict[tuple[int, int], int] = {}

    def floor(self, mailbox: Mailbox, messages: Iterable[Message]) -> int:
        """The highest UID that is not recent any more in ``mailbox``."""
        key = (mailbox.id, mailbox.uidvalidity)
        claimed = self._claimed.get(key)
        if claimed is None:
            claimed = max((message.uid for message in messages if message.save_date < self.started), default=0)
            self._claimed[key] = claimed
        return claimed

    def claim(self, mailbox: Mailbox, uids: Iterable[int]) -> set[int]:
        """Of ``uids`` (ascending, above the floor), those no session had: they are recent for the caller."""
        key = (mailbox.id, mailbox.uidvalidity)
        claimed = self._claimed.get(key, 0)
        mine = {uid for uid in uids if uid > claimed}
        if mine:
            self._claimed[key] = max(mine)
        return mine

    def count(self, mailbox: Mailbox, messages: Iterable[Message]) -> int:
        """STATUS RECENT: the messages no session has claimed yet."""
        listed = list(messages)
        floor = self.floor(mailbox, listed)
        return sum(1 for message in listed if message.uid > floor)
