"""The store contract: every backend must pass these (they use only the Protocols of store.api)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from pochta.store.api import (
    INBOX,
    AlreadyExists,
    ChangeKind,
    Conflict,
    FlagOp,
    NewMessage,
    NotFound,
    OverQuota,
    SpecialUse,
    Store,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _account(store: Store, address: str = "alice@example.test", quota: int = 0) -> int:
    domain = address.rpartition("@")[2]
    if await store.get_domain(domain) is None:
        await store.add_domain(domain)
    account = await store.add_account(address, password_hash="$argon2id$x", scram=None, quota_bytes=quota)
    return account.id


async def _inbox(store: Store, account_id: int) -> int:
    mailbox = await store.get_mailbox(account_id, INBOX)
    assert mailbox is not None
    return mailbox.id


def _message(
    account_id: int, mailbox_id: int, *, size: int = 100, blob: str = "ab" * 32, flags: frozenset[str] = frozenset()
) -> NewMessage:
    return NewMessage(
        account_id=account_id,
        mailbox_id=mailbox_id,
        blob_id=blob,
        size=size,
        structure=b"{}",
        flags=flags,
        internal_date=WHEN,
    )


# ---- directory ------------------------------------------------------------------------------------


async def test_domains_add_list_remove(store: Store) -> None:
    await store.add_domain("b.test")
    await store.add_domain("a.test")
    assert [d.name for d in await store.list_domains()] == ["a.test", "b.test"]
    with pytest.raises(AlreadyExists):
        await store.add_domain("a.test")
    await store.remove_domain("a.test")
    assert await store.get_domain("a.test") is None
    with pytest.raises(NotFound):
        await store.remove_domain("a.test")


async def test_domain_with_accounts_cannot_be_removed(store: Store) -> None:
    await _account(store)
    with pytest.raises(Conflict):
        await store.remove_domain("example.test")
    assert await store.get_domain("example.test") is not None


async def test_new_account_gets_the_standard_mailboxes(store: Store) -> None:
    account_id = await _account(store)
    boxes = {m.name: m.special_use for m in await store.list_mailboxes(account_id)}
    assert boxes == {
        "INBOX": None,
        "Drafts": SpecialUse.DRAFTS,
        "Sent": SpecialUse.SENT,
        "Junk": SpecialUse.JUNK,
        "Trash": SpecialUse.TRASH,
        "Archive": SpecialUse.ARCHIVE,
    }
    validities = {m.uidvalidity for m in await store.list_mailboxes(account_id)}
    assert len(validities) == 6  # every mailbox its own UIDVALIDITY


async def test_account_needs_a_served_domain_and_a_free_address(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_account("x@nowhere.test", password_hash="h", scram=None)
    await _account(store)
    with pytest.raises(AlreadyExists):
        await store.add_account("alice@example.test", password_hash="h", scram=None)
    await store.add_alias("team@example.test", ["alice@example.test"])
    with pytest.raises(AlreadyExists):
        await store.add_account("team@example.test", password_hash="h", scram=None)
    with pytest.raises(AlreadyExists):
        await store.add_alias("alice@example.test", ["x@y.test"])


async def test_password_quota_and_removal(store: Store) -> None:
    account_id = await _account(store)
    await store.set_password("alice@example.test", password_hash="new", scram=None)
    await store.set_quota("alice@example.test", quota_bytes=1234)
    account = await store.get_account_by_id(account_id)
    assert account is not None
    assert (account.password_hash, account.quota_bytes) == ("new", 1234)
    inbox = await _inbox(store, account_id)
    await store.append([_message(account_id, inbox)])
    await store.remove_account("alice@example.test")
    assert await store.get_account("alice@example.test") is None
    assert await store.list_mailboxes(account_id) == []
    with pytest.raises(NotFound):
        await store.remove_account("alice@example.test")
    with pytest.raises(NotFound):
        await store.set_password("alice@example.test", password_hash="x", scram=None)


async def test_aliases(store: Store) -> None:
    await _account(store)
    await store.add_alias("list@example.test", ["alice@example.test", "bob@elsewhere.test"])
    await store.add_alias("@example.test", ["alice@example.test"])
    alias = await store.get_alias("list@example.test")
    assert alias is not None and alias.targets == ("alice@example.test", "bob@elsewhere.test")
    assert [a.address for a in await store.list_aliases()] == ["@example.test", "list@example.test"]
    await store.remove_alias("list@example.test")
    with pytest.raises(NotFound):
        await store.remove_alias("list@example.test")
    with pytest.raises(NotFound):
        await store.add_alias("x@unserved.test", ["alice@example.test"])


# ---- mailboxes ------------------------------------------------------------------------------------


async def test_create_rename_delete_mailboxes(store: Store) -> None:
    account_id = await _account(store)
    work = await store.create_mailbox(account_id, "Work")
    await store.create_mailbox(account_id, "Work/2026")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(account_id, "Work")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(account_id, "inbox")
    await store.rename_mailbox(account_id, "Work", "Job")
    names = {m.name for m in await store.list_mailboxes(account_id)}
    assert {"Job", "Job/2026"} <= names and "Work" not in names
    renamed = await store.get_mailbox(account_id, "Job")
    assert renamed is not None and renamed.id == work.id and renamed.uidvalidity == work.uidvalidity
    with pytest.raises(Conflict):
        await store.rename_mailbox(account_id, "Job", "Job/2026/x")
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(account_id, "Job", "Sent")
    await store.delete_mailbox(account_id, "Job")
    with pytest.raises(NotFound):
        await store.delete_mailbox(account_id, "Job")
    with pytest.raises(Conflict):
        await store.delete_mailbox(account_id, INBOX)
    again = await store.create_mailbox(account_id, "Job")
    assert again.uidvalidity != work.uidvalidity  # RFC 9051 §2.3.1.1


async def test_rename_inbox_moves_its_messages(store: Store) -> None:
    account_id = await _account(store, quota=150)
    inbox = await _inbox(store, account_id)
    await store.append([_message(account_id, inbox, size=100)])
    await store.rename_mailbox(account_id, INBOX, "Old")  # needs no quota headroom
    old = await store.get_mailbox(account_id, "Old")
    new_inbox = await store.get_mailbox(account_id, INBOX)
    assert old is not None and old.messages == 1
    assert new_inbox is not None and new_inbox.messages == 0
    account = await store.get_account_by_id(account_id)
    assert account is not None and account.used_bytes == 100


async def test_subscriptions(store: Store) -> None:
    account_id = await _account(store)
    await store.create_mailbox(account_id, "Lists", subscribe=False)
    mailbox = await store.get_mailbox(account_id, "Lists")
    assert mailbox is not None and not mailbox.is_subscribed
    await store.set_subscribed(account_id, "Lists", is_subscribed=True)
    mailbox = await store.get_mailbox(account_id, "Lists")
    assert mailbox is not None and mailbox.is_subscribed
    # RFC 9051 §6.3.7: a name may be subscribed before its mailbox exists, and stays when it is deleted
    await store.set_subscribed(account_id, "Later", is_subscribed=True)
    await store.delete_mailbox(account_id, "Lists")
    assert "Lists" in await store.subscriptions(account_id)
    await store.create_mailbox(account_id, "Later", subscribe=False)
    later = await store.get_mailbox(account_id, "Later")
    assert later is not None and later.is_subscribed
    await store.create_mailbox(account_id, "Later/Child", subscribe=True)
    await store.rename_mailbox(account_id, "Later", "Renamed")
    names = await store.subscriptions(account_id)
    assert "Renamed" in names and "Renamed/Child" in names and "Later" not in names
    await store.set_subscribed(account_id, "Lists", is_subscribed=False)
    assert "Lists" not in await store.subscriptions(account_id)


# ---- messages -------------------------------------------------------------------------------------


async def test_append_assigns_uids_and_modseqs_and_counts(store: Store) -> None:
    account_id = await _account(store)
    inbox = await _inbox(store, account_id)
    before = await store.get_mailbox(account_id, INBOX)
    first = await store.append([_message(account_id, inbox, size=10)])
    second = await store.append([_message(account_id, inbox, size=20, flags=frozenset({"\\Seen", "$Work"}))])
    assert [first[0].uid, second[0].uid] == [1, 2]
    assert before is not None and before.highestmodseq < first[0].modseq < second[0].modseq
    mailbox = await store.get_mailbox(account_id, INBOX)
    assert mailbox is not None
    assert (mailbox.messages, mailbox.unseen, mailbox.size, mailbox.uidnext) == (2, 1, 30, 3)
    assert mailbox.highestmodseq == second[0].modseq
    messages = await store.messages(inbox, with_structure=True)
    assert [m.uid for m in messages] == [1, 2]
    assert messages[1].flags == {"\\Seen", "$Work"}
    assert messages[0].internal_date == WHEN and messages[0].structure == b"{}"
    assert (await store.messages(inbox))[0].structure is None
    assert [m.uid for m in await store.messages(inbox, uids=[2, 9])] == [2]
    account = await store.get_account_by_id(account_id)
    assert account is not None and account.used_bytes == 30


async def test_multi_recipient_append_is_all_or_none(store: Store) -> None:
    alice = await _account(store, "alice@example.test")
    bob = await _account(store, "bob@example.test", quota=50)
    batch = [_message(alice, await _inbox(store, alice), size=100), _message(bob, await _inbox(store, bob), size=100)]
    with pytest.raises(OverQuota):
        await store.append(batch)
    assert await store.messages(await _inbox(store, alice)) == []
    with pytest.raises(NotFound):
        await store.append([_message(alice, await _inbox(store, alice)), _message(alice, 999999)])
    assert await store.messages(await _inbox(store, alice)) == []
    bobs_inbox = await _inbox(store, bob)
    before = await store.get_mailbox(bob, "INBOX")
    used = (await store.get_account_by_id(alice)).used_bytes  # type: ignore[union-attr]
    with pytest.raises(NotFound):  # a mailbox of another account: nothing lands there, no count moves
        await store.append([_message(alice, bobs_inbox, size=10)])
    assert await store.messages(bobs_inbox) == [] and await store.get_mailbox(bob, "INBOX") == before
    assert (await store.get_account_by_id(alice)).used_bytes == used  # type: ignore[union-attr]
    # and a failed job does not disturb a concurrent good one (each job its own savepoint)
    good, bad = await asyncio.gather(
        store.append([_message(alice, await _inbox(store, alice))]),
        store.append([_message(bob, await _inbox(store, bob), size=1000)]),
        return_exceptions=True,
    )
    assert isinstance(bad, OverQuota) and not isinstance(good, BaseException)
    assert [m.uid for m in await store.messages(await _inbox(store, alice))] == [1]


async def test_concurrent_appends_get_strictly_increasing_uids_without_gaps(store: Store) -> None:
    account_id = await _account(store)
    inbox = await _inbox(store, account_id)

    async def writer() -> list[tuple[int, int]]:
        got = []
        for _ in range(25):
            (result,) = await store.append([_message(account_id, inbox)])
            got.append((result.uid, result.modseq))
        return got

    results = await asyncio.gather(*(writer() for _ in range(20)))
    for got in results:  # each writer sees its own appends in order
        assert got == sorted(got) and len({modseq for _, modseq in got}) == len(got)
    uids = sorted(uid for got in results for uid, _ in got)
    assert uids == list(range(1, 501))
    by_uid = sorted(pair for got in results for pair in got)
    modseqs = [modseq for _, modseq in by_uid]
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 500  # MODSEQ rises with every append
    stored = await store.messages(inbox)
    assert [m.uid for m in stored] == list(range(1, 501))


async def test_store_flags_bumps_modseq_and_honours_unchangedsince(store: Store) -> None:
    account_id = await _account(store)
    inbox = await _inbox(store, account_id)
    appended = await store.append([_message(account_id, inbox), _message(account_id, inbox)])
    result = await store.store_flags(inbox, [1, 2], op=FlagOp.ADD, flags=frozenset({"\\Seen"}))
    assert [u.uid for u in result.updated] == [1, 2]
    modseq = result.updated[0].modseq
    assert modseq > appended[1].modseq
    mailbox = await store.get_mailbox(account_id, INBOX)
    assert mailbox is not None and mailbox.unseen == 0 and mailbox.highestmodseq == modseq
    # no change, no new MODSEQ
    same = await store.store_flags(inbox, [1], op=FlagOp.ADD, flags=frozenset({"\\Seen"}))
    assert same.updated == []
    changed = await store.store_flags(inbox, [1], op=FlagOp.REMOVE, flags=frozenset({"\\Seen"}))
    assert changed.updated[0].modseq > modseq and changed.updated[0].flags == frozenset()
    conditional = await store.store_flags(
        inbox, [1, 2], op=FlagOp.SET, flags=frozenset({"$Label"}), unchanged_since=modseq
    )
    assert conditional.failed_unchangedsince == [1]  # RFC 7162 §3.1.3: uid 1 changed after `modseq`
    assert [u.uid for u in conditional.updated] == [2]
    mailbox = await store.get_mailbox(account_id, INBOX)
    assert mailbox is not None and mailbox.unseen == 2


async def test_copy_move_expunge_and_the_change_log(store: Store) -> None:
    account_id = await _account(store)
    inbox = await _inbox(store, account_id)
    archive = await store.get_mailbox(account_id, "Archive")
    assert archive is not None
    await store.append([_message(account_id, inbox, size=10) for _ in range(3)])
    start = (await store.get_mailbox(account_id, INBOX)).highestmodseq  # type: ignore[union-attr]
    assert await store.copy(inbox, [1, 3, 42], archive.id) == [(1, 1), (3, 2)]
    account = await store.get_account_by_id(account_id)
    assert account is not None and account.used_bytes == 50
    assert await store.move(inbox, [2], archive.id) == [(2, 3)]
    account = await store.get_account_by_id(account_id)
    assert account is not None and account.used_bytes == 50
    assert await store.expunge(inbox, [1, 77]) == [1]
    changes = await store.changes_since(inbox, start)
    assert [(c.uid, c.kind) for c in changes] == [(2, ChangeKind.EXPUNGE), (1, ChangeKind.EXPUNGE)]
    assert all(c.modseq > start for c in changes)
    await store.store_flags(inbox, [3], op=FlagOp.ADD, flags=frozenset({"\\Flagged"}))
    latest = await store.changes_since(inbox, changes[-1].modseq)
    assert [(c.uid, c.kind) for c in latest] == [(3, ChangeKind.MESSAGE)]
    mailbox = await store.get_mailbox(account_id, INBOX)
    assert mailbox is not None and (mailbox.messages, mailbox.size) == (1, 10)
    target = await store.get_mailbox(account_id, "Archive")
    assert target is not None and (target.messages, target.size, target.uidnext) == (3, 30, 4)


async def test_copy_checks_the_quota(store: Store) -> None:
    account_id = await _account(store, quota=150)
    inbox = await _inbox(store, account_id)
    trash = await store.get_mailbox(account_id, "Trash")
    assert trash is not None
    await store.append([_message(account_id, inbox, size=100)])
    with pytest.raises(OverQuota):
        await store.copy(inbox, [1], trash.id)
    assert await store.move(inbox, [1], trash.id) == [(1, 1)]  # a move needs no headroom


async def test_watch_wakes_after_commit(store: Store) -> None:
    account_id = await _account(store)
    inbox = await _inbox(store, account_id)
    watcher = store.watch(account_id).__aiter__()
    woken = asyncio.ensure_future(watcher.__anext__())
    await asyncio.sleep(0)
    assert not woken.done()
    await store.append([_message(account_id, inbox)])
    await asyncio.wait_for(woken, 2)
    await watcher.aclose()  # type: ignore[attr-defined]
