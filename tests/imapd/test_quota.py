"""IMAP QUOTA (RFC 9208) and what retention moves look like to a client in IDLE."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pochta.archive.retention import RetentionTask
from pochta.store.api import INBOX

from ..archive.helpers import AFTER_EVERY_SAVE, NOW, clock, put, settings
from .harness import Imap


async def test_getquotaroot_and_getquota(imap: Imap) -> None:
    await imap.add_user("carol@example.test", quota=10 * 1024 * 1024)
    client = await imap.session("carol@example.test")
    await client.append("INBOX", b"Subject: hello\r\n\r\n" + b"x" * 4000 + b"\r\n")
    await imap.transcript(
        """
        C: a GETQUOTAROOT INBOX
        S: * QUOTAROOT "INBOX" ""
        S: * QUOTA "" (STORAGE 3 10240)
        S: a OK GETQUOTAROOT completed
        C: b GETQUOTA ""
        S: * QUOTA "" (STORAGE 3 10240)
        S: b OK GETQUOTA completed
        C: c GETQUOTA "other"
        S: c NO [NONEXISTENT] no such quota root
        C: d SETQUOTA "" (STORAGE 1)
        S: d NO [NOPERM] quotas are set by the administrator
        C: e GETQUOTAROOT Nowhere
        S: e NO [NONEXISTENT] no such mailbox
        C: f GETQUOTA
        S: f BAD *
        """,
        client,
    )


async def test_no_quota_means_no_root(imap: Imap) -> None:
    client = await imap.session()
    await imap.transcript(
        """
        C: a GETQUOTAROOT INBOX
        S: * QUOTAROOT "INBOX"
        S: a OK GETQUOTAROOT completed
        C: b GETQUOTA ""
        S: b NO [NONEXISTENT] no such quota root
        """,
        client,
    )


async def test_quota_commands_need_login(imap: Imap) -> None:
    await imap.transcript(
        """
        S: * OK *
        C: a GETQUOTAROOT INBOX
        S: a BAD *
        """
    )


async def test_status_deleted_storage(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", b"Subject: a\r\n\r\n" + b"x" * 3000 + b"\r\n", flags="\\Deleted")
    await client.append("INBOX", b"Subject: b\r\n\r\nshort\r\n")
    await imap.transcript(
        """
        C: a STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
        S: * STATUS "INBOX" (MESSAGES 2 DELETED 1 DELETED-STORAGE 2)
        S: a OK STATUS completed
        """,
        client,
    )


async def test_copy_and_move_over_quota_are_refused(imap: Imap) -> None:
    await imap.add_user("dave@example.test", quota=5000)
    client = await imap.session("dave@example.test")
    assert (await client.append("INBOX", b"Subject: a\r\n\r\n" + b"x" * 3000 + b"\r\n"))[-1].split()[1] == "OK"
    assert (await client.command("SELECT INBOX"))[-1].endswith("SELECT completed")
    await imap.transcript(
        """
        C: b COPY 1 Archive
        S: b NO [OVERQUOTA] quota exceeded
        C: c MOVE 1 Archive
        S: * OK [COPYUID *
        S: * 1 EXPUNGE
        S: c OK MOVE completed
        """,
        client,
    )  # a MOVE inside the account needs no headroom


async def test_idle_clients_see_retention_moves(imap: Imap) -> None:
    account_id = await imap.add_user("erin@example.test")
    old = await put(imap.store, account_id, INBOX, received=NOW - timedelta(days=60))
    await put(imap.store, account_id, INBOX, received=NOW - timedelta(days=1))
    watching_inbox = await imap.session("erin@example.test")
    watching_archive = await imap.session("erin@example.test")
    assert (await watching_inbox.command("SELECT INBOX"))[-1].endswith("SELECT completed")
    assert (await watching_archive.command("SELECT Archive"))[-1].endswith("SELECT completed")
    for client in (watching_inbox, watching_archive):
        await client.send(b"i IDLE\r\n")
        assert await client.line() == "+ idling"
    task = RetentionTask(imap.store, settings=settings(archive_after_days=30), now=clock(NOW))
    report = await task.run_once()
    assert [(s.mailbox, s.count) for s in report.steps] == [(INBOX, 1)]
    assert old == 1
    assert await asyncio.wait_for(watching_inbox.line(), 10) == "* 1 EXPUNGE"
    assert await asyncio.wait_for(watching_archive.line(), 10) == "* 1 EXISTS"
    for client in (watching_inbox, watching_archive):
        await client.send(b"DONE\r\n")
        assert (await client.until("i"))[-1] == "i OK IDLE terminated"


async def test_qresync_clients_see_retention_moves_as_vanished(imap: Imap) -> None:
    account_id = await imap.add_user("fred@example.test")
    await put(imap.store, account_id, "Trash", received=NOW)
    client = await imap.session("fred@example.test")
    assert (await client.command("ENABLE QRESYNC"))[-1].endswith("OK ENABLE completed")
    assert (await client.command("SELECT Trash"))[-1].endswith("SELECT completed")
    await client.send(b"i IDLE\r\n")
    assert await client.line() == "+ idling"
    task = RetentionTask(imap.store, settings=settings(trash_days=30), now=clock(AFTER_EVERY_SAVE))
    await task.run_once()
    assert await asyncio.wait_for(client.line(), 10) == "* VANISHED 1"  # RFC 7162 §3.2.10
    await client.send(b"DONE\r\n")
    assert (await client.until("i"))[-1] == "i OK IDLE terminated"
