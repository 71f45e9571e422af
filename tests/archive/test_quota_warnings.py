"""One warning message at 90 % of the quota, again only after usage dropped below it."""

from __future__ import annotations

import asyncio
import email
from email import policy

from pochta.archive.quota import QuotaWarnings
from pochta.store.api import INBOX, Store
from pochta.store.blobs import FileBlobs

from .helpers import NOW, add_account, clock, mailbox, put

ALICE = "alice@example.test"


def _warnings(store: Store, blobs: FileBlobs, percent: int = 90) -> QuotaWarnings:
    return QuotaWarnings(store, blobs, hostname="mx.example.test", percent=percent, now=clock(NOW))


async def _inbox_subjects(store: Store, blobs: FileBlobs, account_id: int) -> list[str]:
    inbox = await mailbox(store, account_id, INBOX)
    subjects = []
    for message in await store.messages(inbox.id):
        if message.blob_id == "ab" * 32:
            continue  # the filler messages of the test
        parsed = email.message_from_bytes(await blobs.read(message.blob_id), policy=policy.default)
        assert parsed["Auto-Submitted"] == "auto-generated" and parsed["To"] == ALICE
        subjects.append(str(parsed["Subject"]))
    return subjects


async def test_a_warning_once_when_passing_the_level(store: Store, blobs: FileBlobs) -> None:
    account_id = await add_account(store, ALICE, quota=10_000)
    warnings = _warnings(store, blobs)
    big = await put(store, account_id, INBOX, received=NOW, size=8_900)
    assert await warnings.check() == 0  # 89 %
    await put(store, account_id, INBOX, received=NOW, size=200)
    assert await warnings.check() == 1  # 91 %
    assert await _inbox_subjects(store, blobs, account_id) == ["Your mailbox is 91% full"]
    await put(store, account_id, INBOX, received=NOW, size=100)
    assert await warnings.check() == 0  # already told
    # usage drops below the level: the next crossing warns again
    inbox = await mailbox(store, account_id)
    await store.expunge(inbox.id, [big])
    assert await warnings.check() == 0
    await put(store, account_id, INBOX, received=NOW, size=8_500)
    assert await warnings.check() == 1


async def test_the_warning_arrives_even_when_it_does_not_fit(store: Store, blobs: FileBlobs) -> None:
    account_id = await add_account(store, ALICE, quota=1_000)
    await put(store, account_id, INBOX, received=NOW, size=999)
    assert await _warnings(store, blobs).check() == 1
    account = await store.get_account(ALICE)
    assert account is not None and account.quota_bytes == 1_000 and account.used_bytes > 1_000


async def test_delivery_triggers_the_check(store: Store, blobs: FileBlobs) -> None:
    account_id = await add_account(store, ALICE, quota=1_000)
    await put(store, account_id, INBOX, received=NOW, size=950)
    account = await store.get_account(ALICE)
    assert account is not None
    warnings = _warnings(store, blobs)
    warnings.on_stored([account], 0)  # what LocalDelivery calls after storing
    for _ in range(200):
        if len(await _inbox_subjects(store, blobs, account_id)) == 1:
            break
        await asyncio.sleep(0.05)
    assert len(await _inbox_subjects(store, blobs, account_id)) == 1
    await warnings.close()


async def test_accounts_without_quota_and_percent_zero_get_nothing(store: Store, blobs: FileBlobs) -> None:
    account_id = await add_account(store, ALICE)
    await put(store, account_id, INBOX, received=NOW, size=10**9)
    assert await _warnings(store, blobs).check() == 0
    limited = await add_account(store, "bob@example.test", quota=100)
    await put(store, limited, INBOX, received=NOW, size=100)
    assert await _warnings(store, blobs, percent=0).check() == 0
