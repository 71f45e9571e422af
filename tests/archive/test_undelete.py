"""The undelete bin: expunged messages kept, out of quota and out of sight, and put back by `restore`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pochta.archive.undelete import recoverable, restore
from pochta.store.api import INBOX, FlagOp, NotFound, OverQuota, Store

from .helpers import NOW, add_account, mailbox, put, uids

ALICE = "alice@example.test"


async def _used(store: Store) -> int:
    account = await store.get_account(ALICE)
    assert account is not None
    return account.used_bytes


async def test_expunged_messages_are_kept_out_of_quota_and_restored(store: Store) -> None:
    account_id = await add_account(store, ALICE, quota=1000)
    inbox = await mailbox(store, account_id)
    first = await put(store, account_id, INBOX, received=NOW - timedelta(days=3), size=300)
    await put(store, account_id, INBOX, received=NOW, size=200)
    await store.store_flags(inbox.id, [first], op=FlagOp.ADD, flags=frozenset({"\\Deleted", "\\Flagged"}))
    assert await store.expunge(inbox.id, [first]) == [first]
    assert await _used(store) == 200  # not counted in quota
    assert len(await store.messages(inbox.id)) == 1  # not visible to IMAP/POP3
    (kept,) = await recoverable(store, ALICE)
    assert (kept.mailbox, kept.size, kept.internal_date) == (INBOX, 300, NOW - timedelta(days=3))
    restored = await restore(store, ALICE)
    assert [name for name, _ in restored.placed] == [INBOX]
    (_, new_uid) = restored.placed[0]
    assert new_uid > first  # a new UID: clients see it as a new message
    (back,) = await store.messages(inbox.id, uids=[new_uid])
    assert back.flags == frozenset({"\\Flagged"})  # without the \Deleted that got it expunged
    assert back.internal_date == NOW - timedelta(days=3)
    assert await _used(store) == 500
    assert await recoverable(store, ALICE) == []


async def test_moves_are_not_kept(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    uid = await put(store, account_id, INBOX, received=NOW)
    await store.move((await mailbox(store, account_id)).id, [uid], (await mailbox(store, account_id, "Archive")).id)
    assert await recoverable(store, ALICE) == []


async def test_a_deleted_mailbox_comes_back_with_its_messages(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    await mailbox(store, account_id, "Projects")
    await put(store, account_id, "Projects/2026", received=NOW)
    await put(store, account_id, "Projects/2026", received=NOW)
    await store.delete_mailbox(account_id, "Projects/2026")
    await store.delete_mailbox(account_id, "Projects")
    assert [m.mailbox for m in await recoverable(store, ALICE)] == ["Projects/2026"] * 2
    restored = await restore(store, ALICE, mailbox="Projects/2026")
    assert len(restored.placed) == 2
    assert len(await uids(store, account_id, "Projects/2026")) == 2
    assert await store.get_mailbox(account_id, "Projects") is not None  # the parent made again too


async def test_restore_filters_by_mailbox_and_time(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    for name in (INBOX, "Sent"):
        uid = await put(store, account_id, name, received=NOW)
        await store.expunge((await mailbox(store, account_id, name)).id, [uid])
    (kept_inbox,) = await recoverable(store, ALICE, mailbox=INBOX)
    assert await recoverable(store, ALICE, since=kept_inbox.expunged + timedelta(days=1)) == []
    restored = await restore(store, ALICE, mailbox="Sent")
    assert [name for name, _ in restored.placed] == ["Sent"]
    assert [m.mailbox for m in await recoverable(store, ALICE)] == [INBOX]


async def test_restore_over_quota_restores_nothing_of_the_batch(store: Store) -> None:
    account_id = await add_account(store, ALICE, quota=500)
    inbox = await mailbox(store, account_id)
    gone = [await put(store, account_id, INBOX, received=NOW, size=200) for _ in range(2)]
    await store.expunge(inbox.id, gone)
    await put(store, account_id, INBOX, received=NOW, size=200)
    with pytest.raises(OverQuota):
        await restore(store, ALICE)
    assert len(await recoverable(store, ALICE)) == 2
    assert await _used(store) == 200


async def test_restore_for_an_unknown_account(store: Store) -> None:
    with pytest.raises(NotFound):
        await restore(store, "nobody@example.test")


async def test_a_removed_account_takes_its_bin_along(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    uid = await put(store, account_id, INBOX, received=NOW)
    await store.expunge((await mailbox(store, account_id)).id, [uid])
    await store.remove_account(ALICE)
    again = await add_account(store, ALICE)
    assert await store.deleted_messages(again) == []
