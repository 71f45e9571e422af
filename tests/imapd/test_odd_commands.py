"""Odd but legal (or wrong) commands get a tagged answer; the session never crashes."""

from __future__ import annotations

import logging

import pytest

from .harness import Imap

ODD = [
    "FETCH 1:* (BODY.PEEK[1.2.3] BINARY.PEEK[1] BINARY.SIZE[] BODY[1.MIME] BODY.PEEK[TEXT]<5.1>)",
    "FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject)] RFC822.TEXT RFC822.HEADER BODY)",
    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
    "UID FETCH 99:* FLAGS",
    "STORE 1 FLAGS ()",
    "STORE 1 +FLAGS (\\Recent Custom)",
    "UID STORE 5000 +FLAGS (\\Seen)",
    "SEARCH OR OR SEEN UNSEEN NOT ALL HEADER Received x",
    "SEARCH NEW OLD RECENT UNRECENT KEYWORD Custom UNKEYWORD Other",
    "SEARCH EMAILID abc THREADID def SAVEDBEFORE 1-Jan-2030 SAVEDON 1-Jan-2030",
    "UID SEARCH RETURN (MIN MAX SAVE) ALL",
    "UID SEARCH UID $",
    "COPY 1:* INBOX",
    "MOVE 1 INBOX",
    "UID EXPUNGE 1:*",
    "CREATE Zeta",
    "RENAME INBOX Zeta/old",
    "RENAME INBOX Moved",
    "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ MAILBOXID APPENDLIMIT)",
    'LIST (SUBSCRIBED REMOTE) "" ("*" "%") RETURN (CHILDREN SPECIAL-USE SUBSCRIBED STATUS (MESSAGES))',
    'LIST "Moved" "%"',
    'LSUB "" ""',
    "DELETE Moved",
    "NOOP",
    "FETCH 1:* FLAGS",
    "CHECK",
    "CLOSE",
    "EXAMINE Nowhere",
    "SELECT INBOX (CONDSTORE)",
    "UNSELECT",
    "ENABLE QRESYNC CONDSTORE UTF8=ACCEPT X-UNKNOWN",
    "SELECT INBOX (QRESYNC (1 1 1:10 (1:2 1:2)))",
    "EXPUNGE",
    "IDLE",
]


@pytest.mark.parametrize("rev2", [False, True])
async def test_odd_commands_get_answers(imap: Imap, rev2: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    client = await imap.session()
    if rev2:
        await client.command("ENABLE IMAP4rev2")
    for number in range(3):
        await client.append("INBOX", b"Subject: %d\r\nContent-Transfer-Encoding: x-uue\r\n\r\nbody\r\n" % number)
    await client.command("SELECT INBOX")
    for index, command in enumerate(ODD):
        tag = f"o{index}"
        await client.send(f"{tag} {command}\r\n".encode())
        if command == "IDLE":
            assert await client.line() == "+ idling"
            await client.send(b"DONE\r\n")
        lines = await client.until(tag)
        assert lines[-1].split()[1] in ("OK", "NO", "BAD"), (command, lines)
        assert "BAD" not in lines[-1] or "ENABLE" in command, (command, lines)
    assert await client.command("LOGOUT", tag="z") == ["* BYE logging out", "z OK LOGOUT completed"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
