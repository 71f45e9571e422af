"""Sessions in sync: other sessions' changes arrive as EXISTS / EXPUNGE / FETCH at allowed moments,
IDLE pushes them as they happen, QRESYNC resynchronises with exactly the changes since a MODSEQ."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from .harness import Client, Imap, running_imap

MESSAGE = b"Subject: m\r\n\r\nbody\r\n"


async def _two_sessions(imap: Imap, count: int = 2) -> tuple[Client, Client]:
    first = await imap.session()
    for _ in range(count):
        await first.append("INBOX", MESSAGE)
    second = await imap.session()
    await first.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    return first, second


async def test_noop_shows_other_sessions_changes(imap: Imap) -> None:
    first, second = await _two_sessions(imap)
    await second.append("INBOX", MESSAGE)
    await second.command("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert await first.command("NOOP", tag="n") == [
        "* 3 EXISTS",
        "* 2 RECENT",  # RFC 3501 §7.3.2; message 3 is recent for the second session, which saw it first
        "* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen))",
        "n OK NOOP completed",
    ]
    assert await first.command("NOOP", tag="m") == ["m OK NOOP completed"]


async def test_expunge_waits_while_fetching_by_sequence_number(imap: Imap) -> None:
    first, second = await _two_sessions(imap, 3)
    await second.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert (await second.command("EXPUNGE"))[0] == "* 1 EXPUNGE"
    # RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH by number; numbers stay as they were
    lines = await first.command("FETCH 1:* (UID)", tag="f")
    assert lines == [
        "* 2 FETCH (UID 2)",
        "* 3 FETCH (UID 3)",
        "f OK FETCH completed",
    ]
    assert (await first.command("SEARCH ALL", tag="s"))[-2:] == ["* SEARCH 2 3", "s OK SEARCH completed"]
    assert await first.command("UID FETCH 3 (UID)", tag="u") == [
        "* 3 FETCH (UID 3)",
        "* 1 EXPUNGE",
        "u OK FETCH completed",
    ]
    assert await first.command("FETCH 1:* (UID)", tag="g") == [
        "* 1 FETCH (UID 2)",
        "* 2 FETCH (UID 3)",
        "g OK FETCH completed",
    ]


async def test_idle_pushes_new_mail_flags_and_expunges(imap: Imap) -> None:
    first, second = await _two_sessions(imap)
    await first.send(b"i IDLE\r\n")
    assert await first.line() == "+ idling"
    started = time.monotonic()
    await second.append("INBOX", MESSAGE)
    assert await first.line() == "* 3 EXISTS"
    latency = time.monotonic() - started
    assert await first.line() in ("* 2 RECENT", "* 3 RECENT")  # whichever session saw message 3 first
    print(f"IDLE push latency {latency * 1000:.1f} ms")
    assert latency < 1.0
    await second.command("STORE 2 +FLAGS.SILENT (\\Flagged)")
    assert await first.line() == "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    await second.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await first.line() == "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
    await second.command("EXPUNGE")
    assert await first.line() == "* 1 EXPUNGE"
    await first.send(b"DONE\r\n")
    assert await first.line() == "i OK IDLE terminated"


async def test_idle_latency_for_delivery_is_well_under_a_second(imap: Imap) -> None:
    first = await imap.session()
    await first.command("SELECT INBOX")
    await first.send(b"i IDLE\r\n")
    assert await first.line() == "+ idling"
    other = await imap.session()
    latencies = []
    for count in range(1, 6):
        started = time.monotonic()
        await other.append("INBOX", MESSAGE)
        assert await first.line() == f"* {count} EXISTS"
        latencies.append(time.monotonic() - started)
        assert await first.line() == f"* {count} RECENT"  # the IDLE session is the first to see each
    print("IDLE latencies ms:", [round(value * 1000, 1) for value in latencies])
    assert max(latencies) < 1.0


async def test_qresync_reports_vanished_and_changed(imap: Imap) -> None:
    first, second = await _two_sessions(imap, 4)
    select = await second.command("SELECT INBOX")
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", " ".join(select)).group(1))  # type: ignore[union-attr]
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(select)).group(1))  # type: ignore[union-attr]
    await first.command("STORE 2 +FLAGS.SILENT (\\Seen)")
    await first.command("STORE 3 +FLAGS.SILENT (\\Deleted)")
    await first.command("EXPUNGE")
    await first.command("LOGOUT")
    client = await imap.session()
    assert (await client.command("ENABLE QRESYNC"))[0] == "* ENABLED QRESYNC"
    lines = await client.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:4))", tag="q")
    assert "* VANISHED (EARLIER) 3" in lines
    assert "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (6))" in lines
    assert lines[-1] == "q OK [READ-WRITE] SELECT completed"
    assert not any("FETCH (UID 1" in line or "FETCH (UID 4" in line for line in lines)
    lines = await client.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)", tag="v")
    assert lines == ["* VANISHED (EARLIER) 3", "* 2 FETCH (FLAGS (\\Seen) UID 2 MODSEQ (6))", "v OK FETCH completed"]
    await second.command("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    await asyncio.sleep(0)
    assert await client.command("NOOP", tag="n") == ["* VANISHED 4", "n OK NOOP completed"]


async def test_idle_outlives_the_idle_timeout_and_silence_does_not(tmp_path: Path) -> None:
    async with running_imap(tmp_path, idle_timeout=0.3) as imap:
        await imap.add_user("alice@example.test")
        idler = await imap.session()
        await idler.command("SELECT INBOX")
        await idler.send(b"i IDLE\r\n")
        assert await idler.line() == "+ idling"
        silent = await imap.session()
        await asyncio.sleep(0.8)
        assert await silent.line() == "* BYE [UNAVAILABLE] idle too long, closing connection"
        assert await silent.is_closed()
        await idler.send(b"DONE\r\n")
        assert await idler.line() == "i OK IDLE terminated"


async def test_shutdown_says_bye_to_waiting_and_idling_sessions(imap: Imap) -> None:
    waiting = await imap.session()
    idling = await imap.session()
    await idling.send(b"i IDLE\r\n")
    assert await idling.line() == "+ idling"
    imap.listeners["imap"].stop_accepting()
    for client in (waiting, idling):
        assert await client.line() == "* BYE [UNAVAILABLE] server shutting down, try again later"
        assert await client.is_closed()


async def test_a_bad_line_ends_idle(imap: Imap) -> None:
    client = await imap.session()
    await client.send(b"i IDLE\r\n")
    assert await client.line() == "+ idling"
    await client.send(b"STOP\r\n")
    assert await client.line() == "i BAD expected DONE"
    assert await client.command("NOOP", tag="n") == ["n OK NOOP completed"]


async def test_recent_counts_only_messages_still_there(imap: Imap) -> None:
    first, second = await _two_sessions(imap, 3)  # the first session selected first: 3 recent for it
    await second.command("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    await second.append("INBOX", MESSAGE)  # recent for the second session, which sees it at once
    assert await first.command("NOOP", tag="n") == [
        "* 2 EXPUNGE",
        "* 1 EXPUNGE",
        "* 2 EXISTS",
        "* 1 RECENT",
        "n OK NOOP completed",
    ]
