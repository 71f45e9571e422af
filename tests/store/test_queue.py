"""The outbound queue contract: durable enqueue with local copies, leases, attempts, CLI operations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pochta.mail.envelope import Envelope, Recipient
from pochta.store.api import INBOX, Attempt, NewMessage, NotFound, OverQuota, QueueItem, RecipientState, Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _item(*recipients: str, domain: str = "remote.test") -> QueueItem:
    envelope = Envelope(
        mail_from="alice@example.test",
        recipients=tuple(Recipient(address=r, notify=("FAILURE",), orcpt=None) for r in recipients),
    )
    return QueueItem(blob_id="cd" * 32, size=100, envelope=envelope.dumps(), domain=domain, account_id=None)


async def test_enqueue_claim_and_finish(store: Store) -> None:
    (queue_id,) = await store.enqueue([_item("a@remote.test", "b@remote.test")], now=NOW)
    entry = await store.queue_entry(queue_id)
    assert entry is not None
    assert [r.address for r in entry.recipients] == ["a@remote.test", "b@remote.test"]
    assert entry.recipients[0].notify == ("FAILURE",) and entry.recipients[0].state is RecipientState.PENDING
    assert await store.claim(now=NOW - timedelta(seconds=1), owner="w1", lease_seconds=60, limit=10) == []
    (claimed,) = await store.claim(now=NOW, owner="w1", lease_seconds=60, limit=10)
    assert claimed.id == queue_id and claimed.lease_owner == "w1"
    assert await store.claim(now=NOW, owner="w2", lease_seconds=60, limit=10) == []  # leased
    await store.finish_attempt(
        queue_id,
        owner="w1",
        now=NOW,
        attempt=Attempt(
            results={"a@remote.test": (RecipientState.DELIVERED, "250 ok")},
            next_attempt=NOW + timedelta(minutes=5),
            error="451 try later",
        ),
    )
    entry = await store.queue_entry(queue_id)
    assert entry is not None and entry.attempts == 1 and entry.lease_owner is None
    assert [r.state for r in entry.recipients] == [RecipientState.DELIVERED, RecipientState.PENDING]
    assert await store.claim(now=NOW, owner="w2", lease_seconds=60, limit=10) == []  # not due yet
    (again,) = await store.claim(now=NOW + timedelta(minutes=5), owner="w2", lease_seconds=60, limit=10)
    await store.finish_attempt(
        again.id,
        owner="w2",
        now=NOW,
        attempt=Attempt(results={"b@remote.test": (RecipientState.FAILED, "550 no")}, next_attempt=None),
    )
    assert await store.queue_entry(queue_id) is None  # nothing pending: gone


async def test_an_expired_lease_is_claimed_again(store: Store) -> None:
    (queue_id,) = await store.enqueue([_item("a@remote.test")], now=NOW)
    await store.claim(now=NOW, owner="crashed", lease_seconds=30, limit=10)
    assert await store.claim(now=NOW + timedelta(seconds=10), owner="w2", lease_seconds=30, limit=10) == []
    (entry,) = await store.claim(now=NOW + timedelta(seconds=31), owner="w2", lease_seconds=30, limit=10)
    assert entry.id == queue_id and entry.lease_owner == "w2"


async def test_hold_release_retry_delete(store: Store) -> None:
    (queue_id,) = await store.enqueue([_item("a@remote.test")], now=NOW)
    await store.set_held(queue_id, is_held=True)
    assert await store.claim(now=NOW, owner="w", lease_seconds=30, limit=10) == []
    await store.retry_now(queue_id, now=NOW)  # releases too
    assert len(await store.claim(now=NOW, owner="w", lease_seconds=30, limit=10)) == 1
    await store.delete_queue_entry(queue_id)
    assert await store.queue_entries() == []
    for operation in (
        store.set_held(queue_id, is_held=True),
        store.retry_now(queue_id, now=NOW),
        store.delete_queue_entry(queue_id),
    ):
        with pytest.raises(NotFound):
            await operation


async def test_enqueue_with_local_copies_is_all_or_none(store: Store) -> None:
    await store.add_domain("example.test")
    account = await store.add_account("bob@example.test", password_hash="h", scram=None, quota_bytes=50)
    inbox = await store.get_mailbox(account.id, INBOX)
    assert inbox is not None
    local = NewMessage(
        account_id=account.id, mailbox_id=inbox.id, blob_id="cd" * 32, size=100, structure=b"{}", internal_date=NOW
    )
    with pytest.raises(OverQuota):
        await store.enqueue([_item("a@remote.test")], now=NOW, local=[local])
    assert await store.queue_entries() == []
    await store.set_quota("bob@example.test", quota_bytes=0)
    await store.enqueue([_item("a@remote.test"), _item("c@other.test", domain="other.test")], now=NOW, local=[local])
    assert [e.domain for e in await store.queue_entries()] == ["remote.test", "other.test"]
    assert len(await store.messages(inbox.id)) == 1
