"""Accounts and messages placed straight into a real store, with dates of the test's choosing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pochta.config import Retention
from pochta.store.api import INBOX, Mailbox, NewMessage, Store

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # the fixed clock of these tests
# save dates come from the store's own clock (the machine's): these two clocks lie before and after it
BEFORE_ANY_SAVE = datetime(2000, 1, 1, tzinfo=UTC)
AFTER_EVERY_SAVE = datetime(2100, 1, 1, tzinfo=UTC)


async def add_account(store: Store, address: str, *, quota: int = 0) -> int:
    domain = address.rpartition("@")[2]
    if await store.get_domain(domain) is None:
        await store.add_domain(domain)
    account = await store.add_account(address, password_hash="$argon2id$x", scram=None, quota_bytes=quota)
    return account.id


async def mailbox(store: Store, account_id: int, name: str = INBOX) -> Mailbox:
    found = await store.get_mailbox(account_id, name)
    if found is None:
        found = await store.create_mailbox(account_id, name)
    return found


async def put(
    store: Store,
    account_id: int,
    name: str,
    *,
    received: datetime,
    size: int = 100,
    flags: frozenset[str] = frozenset(),
    blob: str = "ab" * 32,
) -> int:
    target = await mailbox(store, account_id, name)
    (appended,) = await store.append(
        [
            NewMessage(
                account_id=account_id,
                mailbox_id=target.id,
                blob_id=blob,
                size=size,
                structure=b"{}",
                flags=flags,
                internal_date=received,
            )
        ]
    )
    return appended.uid


async def uids(store: Store, account_id: int, name: str) -> list[int]:
    found = await store.get_mailbox(account_id, name)
    return [] if found is None else [m.uid for m in await store.messages(found.id)]


def settings(**values: object) -> Retention:
    """[retention] with the defaults switched off unless a test names them."""
    base: dict[str, object] = {"trash_days": 0, "junk_days": 0, "quota_warning_percent": 0}
    return Retention(**{**base, **values})  # type: ignore[arg-type]


def clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment
