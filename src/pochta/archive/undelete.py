"""Undelete: expunged messages stay in the store's undelete bin for ``[retention] undelete_days``
(not counted in quota, invisible to IMAP and POP3); `restore` puts them back into their mailbox
(made again if it was deleted), as new messages with new UIDs, without the \\Deleted flag.

The retention task purges the bin. Blob files are not deleted with the rows: nothing in Pochta removes
blob files yet (the same octets may be shared by other messages, the queue or the journal), so freeing
disk space waits for a blob collector that checks every reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pochta.store.api import DeletedMessage, NotFound, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored:
    address: str
    messages: list[DeletedMessage]
    placed: list[tuple[str, int]]  # (mailbox, new uid) per message


async def recoverable(
    store: Store, address: str, *, since: datetime | None = None, mailbox: str | None = None
) -> list[DeletedMessage]:
    account = await store.get_account(address)
    if account is None:
        raise NotFound(f"no account {address}")
    return await store.deleted_messages(account.id, since=since, mailbox=mailbox)


async def restore(
    store: Store, address: str, *, since: datetime | None = None, mailbox: str | None = None, batch: int = 500
) -> Restored:
    """Put back the messages of `address` expunged since `since` (from `mailbox`), oldest first.

    Each batch is one transaction; OverQuota stops the restore with what went back so far kept."""
    found = await recoverable(store, address, since=since, mailbox=mailbox)
    account = await store.get_account(address)
    assert account is not None
    placed: list[tuple[str, int]] = []
    for start in range(0, len(found), batch):
        placed += await store.restore_deleted(account.id, [m.id for m in found[start : start + batch]])
    log.info("restored user=%s count=%d", address, len(placed))
    return Restored(address=address, messages=found, placed=placed)
