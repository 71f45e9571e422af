"""STORE (+/-FLAGS, .SILENT, UNCHANGEDSINCE), COPY/MOVE with COPYUID, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT."""

from __future__ import annotations

from .harness import Client, Imap

MESSAGE = b"Subject: m\r\n\r\nbody\r\n"


async def _with_messages(imap: Imap, count: int = 4) -> Client:
    client = await imap.session()
    for _ in range(count):
        await client.append("INBOX", MESSAGE)
    await client.command("SELECT INBOX")
    return client


async def test_store_flags(imap: Imap) -> None:
    client = await _with_messages(imap, 3)
    await imap.transcript(
        """
        C: a STORE 1 +FLAGS (\\Seen $Work)
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)
        S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] flags
        S: * 1 FETCH (FLAGS ($Work \\Recent \\Seen))
        S: a OK STORE completed
        C: b STORE 1:2 -FLAGS.SILENT ($Work)
        S: b OK STORE completed
        C: c UID STORE 2:3 FLAGS (\\Flagged)
        S: * 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))
        S: * 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))
        S: c OK STORE completed
        C: d FETCH 1:* FLAGS
        S: * 1 FETCH (FLAGS (\\Recent \\Seen))
        S: * 2 FETCH (FLAGS (\\Flagged \\Recent))
        S: * 3 FETCH (FLAGS (\\Flagged \\Recent))
        S: d OK FETCH completed
        C: e STORE 9 +FLAGS (\\Seen)
        S: e BAD invalid message sequence number
        """,
        client,
    )


async def test_store_unchangedsince_reports_modified(imap: Imap) -> None:
    client = await _with_messages(imap, 2)
    lines = await client.command("FETCH 1:2 (MODSEQ)")
    assert lines[:3] == [
        "* OK [HIGHESTMODSEQ 3] CONDSTORE enabled",  # RFC 7162 §3.1: FETCH MODSEQ enables CONDSTORE
        "* 1 FETCH (MODSEQ (2))",
        "* 2 FETCH (MODSEQ (3))",
    ]
    await imap.transcript(
        """
        C: a STORE 1:2 (UNCHANGEDSINCE 2) +FLAGS (\\Answered)
        S: * 1 FETCH (FLAGS (\\Answered \\Recent) MODSEQ (4))
        S: a OK [MODIFIED 2] STORE completed
        C: b UID STORE 1 (UNCHANGEDSINCE 4) FLAGS.SILENT (\\Seen)
        S: * 1 FETCH (UID 1 MODSEQ (5))
        S: b OK STORE completed
        """,
        client,
    )


async def test_copy_move_and_expunge(imap: Imap) -> None:
    client = await _with_messages(imap, 4)
    lines = await client.command("COPY 1:2 Archive")
    assert lines[-1].startswith("t7 OK [COPYUID ") and lines[-1].endswith(" 1:2 1:2] COPY completed")
    lines = await client.command("UID MOVE 3 Trash")
    assert lines[0].startswith("* OK [COPYUID ") and lines[0].endswith(" 3 1] moved")
    assert lines[1:] == ["* 3 EXPUNGE", "t8 OK MOVE completed"]
    assert (await client.command("COPY 1 Nowhere"))[-1] == "t9 NO [TRYCREATE] no such mailbox"
    await imap.transcript(
        """
        C: a STORE 1:3 +FLAGS.SILENT (\\Deleted)
        S: a OK STORE completed
        C: b UID EXPUNGE 2
        S: * 2 EXPUNGE
        S: b OK EXPUNGE completed
        C: c EXPUNGE
        S: * 2 EXPUNGE
        S: * 1 EXPUNGE
        S: c OK EXPUNGE completed
        C: d STATUS Archive (MESSAGES)
        S: * STATUS "Archive" (MESSAGES 2)
        S: d OK STATUS completed
        C: e SEARCH ALL
        S: * SEARCH
        S: e OK SEARCH completed
        """,
        client,
    )


async def test_close_expunges_silently_and_examine_is_read_only(imap: Imap) -> None:
    client = await _with_messages(imap, 2)
    await imap.transcript(
        """
        C: a STORE 1 +FLAGS.SILENT (\\Deleted)
        S: a OK STORE completed
        C: b CLOSE
        S: b OK CLOSE completed
        C: c EXAMINE INBOX
        S: * FLAGS *
        S: * OK [PERMANENTFLAGS ()] flags
        S: * 1 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 1] first unseen
        S: * OK [UIDVALIDITY *
        S: * OK [UIDNEXT 3] next UID
        S: * OK [HIGHESTMODSEQ *
        S: * OK [MAILBOXID (F1)] mailbox id
        S: c OK [READ-ONLY] EXAMINE completed
        C: d STORE 1 +FLAGS (\\Seen)
        S: d NO [CANNOT] mailbox is read-only
        C: e FETCH 1 BODY[]
        S: * 1 FETCH (BODY[] {20}\\r\\nSubject: m\\r\\n\\r\\nbody\\r\\n)
        S: e OK FETCH completed
        C: f UNSELECT
        S: f OK UNSELECT completed
        C: g FETCH 1 FLAGS
        S: g BAD FETCH is not allowed in state AUTHENTICATED
        """,
        client,
    )
