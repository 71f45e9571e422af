"""Retention policies with a fixed clock, against a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pochta.archive.retention import RetentionTask, rules_for
from pochta.store.api import INBOX, ChangeKind, RetentionAction, RetentionPolicy, SpecialUse, Store

from .helpers import AFTER_EVERY_SAVE, BEFORE_ANY_SAVE, NOW, add_account, clock, mailbox, put, settings, uids

ALICE = "alice@example.test"


def _task(store: Store, *, now: datetime = NOW, **values: object) -> RetentionTask:
    return RetentionTask(store, settings=settings(**values), now=clock(now))


async def test_rules_most_specific_wins(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    await mailbox(store, account_id, "Lists")
    account = await store.get_account(ALICE)
    assert account is not None
    boxes = await store.list_mailboxes(account_id)
    policies = [
        RetentionPolicy(target="example.test", mailbox=INBOX, action=RetentionAction.ARCHIVE, days=90),
        RetentionPolicy(target=ALICE, mailbox=INBOX, action=RetentionAction.ARCHIVE, days=30, is_per_year=True),
        RetentionPolicy(target="example.test", mailbox="Lists", action=RetentionAction.EXPUNGE, days=7),
        RetentionPolicy(target=ALICE, mailbox="Junk", action=RetentionAction.EXPUNGE, days=0),  # switches off
        RetentionPolicy(target="other.test", mailbox="Sent", action=RetentionAction.EXPUNGE, days=1),
    ]
    rules = {r.mailbox.name: r for r in rules_for(account, boxes, policies, settings(trash_days=30, junk_days=14))}
    assert set(rules) == {INBOX, "Lists", "Trash"}
    assert (rules[INBOX].days, rules[INBOX].is_per_year, rules[INBOX].source) == (30, True, f"account {ALICE}")
    assert (rules["Lists"].action, rules["Lists"].days, rules["Lists"].source) == (
        RetentionAction.EXPUNGE,
        7,
        "domain example.test",
    )
    assert (rules["Trash"].action, rules["Trash"].days, rules["Trash"].source) == (
        RetentionAction.EXPUNGE,
        30,
        "config",
    )


async def test_the_archive_is_never_archived_into_itself(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    account = await store.get_account(ALICE)
    assert account is not None
    policies = [RetentionPolicy(target=ALICE, mailbox="Archive", action=RetentionAction.ARCHIVE, days=1)]
    rules = rules_for(account, await store.list_mailboxes(account_id), policies, settings(archive_after_days=5))
    assert [r.mailbox.name for r in rules] == [INBOX]


async def test_inbox_messages_older_than_n_days_move_to_archive(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    old = await put(store, account_id, INBOX, received=NOW - timedelta(days=31), flags=frozenset({"\\Seen"}))
    young = await put(store, account_id, INBOX, received=NOW - timedelta(days=29))
    inbox = await mailbox(store, account_id)
    report = await _task(store, archive_after_days=30).run_once()
    assert [(s.mailbox, s.action, s.count, s.target) for s in report.steps] == [
        (INBOX, RetentionAction.ARCHIVE, 1, "Archive")
    ]
    assert await uids(store, account_id, INBOX) == [young]
    archive = await mailbox(store, account_id, "Archive")
    (moved,) = await store.messages(archive.id)
    assert moved.flags == frozenset({"\\Seen"}) and moved.internal_date == NOW - timedelta(days=31)
    # an ordinary move: the INBOX change log has the tombstone IMAP sync (VANISHED/EXPUNGE) reads
    changes = await store.changes_since(inbox.id, inbox.highestmodseq)
    assert [(c.uid, c.kind) for c in changes] == [(old, ChangeKind.EXPUNGE)]
    assert (await store.get_account(ALICE)).used_bytes == 200  # type: ignore[union-attr]  # a move costs nothing
    assert (await _task(store, archive_after_days=30).run_once()).steps == []  # nothing left to do


async def test_per_year_archive_folders_are_made(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    for year in (2024, 2025, 2025):
        await put(store, account_id, INBOX, received=datetime(year, 3, 1, tzinfo=UTC))
    await store.set_retention_policy(
        RetentionPolicy(target="example.test", mailbox=INBOX, action=RetentionAction.ARCHIVE, days=60, is_per_year=True)
    )
    report = await _task(store).run_once()
    assert sorted((s.target, s.count) for s in report.steps) == [("Archive/2024", 1), ("Archive/2025", 2)]
    assert await uids(store, account_id, INBOX) == []
    assert len(await uids(store, account_id, "Archive/2025")) == 2
    assert (await mailbox(store, account_id, "Archive")).special_use is SpecialUse.ARCHIVE


async def test_an_account_without_archive_mailbox_gets_one(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    await store.delete_mailbox(account_id, "Archive")
    await store.create_mailbox(account_id, "Old mail", special_use=SpecialUse.ARCHIVE)
    await put(store, account_id, INBOX, received=NOW - timedelta(days=400))
    await _task(store, archive_after_days=365).run_once()
    assert len(await uids(store, account_id, "Old mail")) == 1  # the \Archive mailbox, whatever its name
    await store.delete_mailbox(account_id, "Old mail")
    await put(store, account_id, INBOX, received=NOW - timedelta(days=400))
    await _task(store, archive_after_days=365).run_once()
    assert len(await uids(store, account_id, "Archive")) == 1
    assert (await mailbox(store, account_id, "Archive")).special_use is SpecialUse.ARCHIVE


async def test_moves_go_in_batches(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    for day in range(7):
        await put(store, account_id, INBOX, received=NOW - timedelta(days=100 + day))
    before = (await mailbox(store, account_id)).highestmodseq
    report = await _task(store, archive_after_days=30, batch=3).run_once()
    assert sum(s.count for s in report.steps) == 7
    assert await uids(store, account_id, INBOX) == []
    assert (await mailbox(store, account_id)).highestmodseq == before + 3  # 3 + 3 + 1: three transactions


async def test_dry_run_changes_nothing(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    for _ in range(4):
        await put(store, account_id, INBOX, received=NOW - timedelta(days=40))
    await put(store, account_id, "Trash", received=NOW)
    report = await _task(store, now=AFTER_EVERY_SAVE, archive_after_days=30, trash_days=30, batch=2).run_once(
        dry_run=True
    )
    assert sorted((s.mailbox, s.count) for s in report.steps) == [(INBOX, 4), ("Trash", 1)]
    assert len(await uids(store, account_id, INBOX)) == 4
    assert len(await uids(store, account_id, "Trash")) == 1


async def test_trash_and_junk_are_expunged_by_their_save_date(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    # received long ago but put in Trash and Junk just now: their days count from now
    await put(store, account_id, "Trash", received=datetime(2001, 1, 1, tzinfo=UTC))
    await put(store, account_id, "Junk", received=datetime(2001, 1, 1, tzinfo=UTC))
    assert (await _task(store, now=BEFORE_ANY_SAVE, trash_days=30, junk_days=10).run_once()).steps == []
    later = _task(store, now=AFTER_EVERY_SAVE, trash_days=30, junk_days=10, undelete_days=100_000)
    report = await later.run_once()
    assert sorted((s.mailbox, s.action) for s in report.steps) == [
        ("Junk", RetentionAction.EXPUNGE),
        ("Trash", RetentionAction.EXPUNGE),
    ]
    assert await uids(store, account_id, "Trash") == [] and await uids(store, account_id, "Junk") == []
    # expunged by retention like by a user: recoverable for undelete_days
    assert sorted(m.mailbox for m in await store.deleted_messages(account_id)) == ["Junk", "Trash"]


async def test_a_policy_of_zero_days_keeps_the_default_off(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    await put(store, account_id, "Trash", received=NOW)
    await store.set_retention_policy(
        RetentionPolicy(target=ALICE, mailbox="Trash", action=RetentionAction.EXPUNGE, days=0)
    )
    assert (await _task(store, now=AFTER_EVERY_SAVE, trash_days=1).run_once()).steps == []
    assert len(await uids(store, account_id, "Trash")) == 1


async def test_a_domain_policy_on_any_folder(store: Store) -> None:
    alice = await add_account(store, ALICE)
    bob = await add_account(store, "bob@example.test")
    carol = await add_account(store, "carol@other.test")
    for account_id in (alice, bob, carol):
        await put(store, account_id, "Newsletters", received=NOW)
    await store.set_retention_policy(
        RetentionPolicy(target="example.test", mailbox="Newsletters", action=RetentionAction.EXPUNGE, days=7)
    )
    report = await _task(store, now=AFTER_EVERY_SAVE).run_once()
    assert sorted(s.account for s in report.steps) == ["alice@example.test", "bob@example.test"]
    assert len(await uids(store, carol, "Newsletters")) == 1


async def test_undelete_bin_is_purged_after_its_days(store: Store) -> None:
    account_id = await add_account(store, ALICE)
    uid = await put(store, account_id, INBOX, received=NOW)
    await store.expunge((await mailbox(store, account_id)).id, [uid])
    assert (await _task(store, now=BEFORE_ANY_SAVE, undelete_days=30).run_once()).undelete_purged == 0
    assert len(await store.deleted_messages(account_id)) == 1
    report = await _task(store, now=AFTER_EVERY_SAVE, undelete_days=30, batch=1).run_once()
    assert report.undelete_purged == 1
    assert await store.deleted_messages(account_id) == []


async def test_policies_are_kept_listed_and_removed(store: Store) -> None:
    policy = RetentionPolicy(target=ALICE, mailbox=INBOX, action=RetentionAction.ARCHIVE, days=30, is_per_year=True)
    await store.set_retention_policy(policy)
    await store.set_retention_policy(
        RetentionPolicy(target=ALICE, mailbox=INBOX, action=RetentionAction.ARCHIVE, days=60)
    )
    assert [p.days for p in await store.retention_policies()] == [60]  # one rule per target and mailbox
    await store.remove_retention_policy(ALICE, INBOX)
    assert await store.retention_policies() == []
