"""The compliance journal: zstd segments written before the store commit, searched, exported, expired."""

from __future__ import annotations

import asyncio
import itertools
import mailbox as mbox_module
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard

from pochta.archive.journal import MAGIC, Journal, write_mbox
from pochta.delivery import LocalCopy, LocalDelivery
from pochta.mail.envelope import Envelope, Recipient
from pochta.mail.mime import parse_message
from pochta.store.api import INBOX, JournalQuery, Store, StoreError
from pochta.store.blobs import FileBlobs

from ..conftest import need
from .helpers import NOW, add_account, clock, mailbox

MESSAGE = (
    b"From: Carol <carol@other.test>\r\nTo: alice@example.test\r\nSubject: contract\r\n\r\n"
    b"The signed contract.\r\nFrom the desk of Carol.\r\n"
)


def _envelope(sender: str, *recipients: str) -> Envelope:
    return Envelope(mail_from=sender, recipients=tuple(Recipient(address=r) for r in recipients))


def _journal(store: Store, blobs: FileBlobs, root: Path, *, now: datetime = NOW) -> Journal:
    return Journal(store, blobs, root, now=clock(now), fsync=True, cache_seconds=0)


async def _write(journal: Journal, blobs: FileBlobs, content: bytes, envelope: Envelope, **kwargs: object) -> None:
    writer = blobs.create()
    writer.write(content)
    await journal(envelope, writer, received=kwargs.get("received", NOW), is_outgoing=bool(kwargs.get("out")))  # type: ignore[arg-type]
    writer.abort()


async def test_records_are_written_searched_and_read_back(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    await store.set_journal_domain("example.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    await _write(journal, blobs, MESSAGE, _envelope("carol@other.test", "alice@example.test", "bcc@example.test"))
    await _write(
        journal, blobs, b"Subject: reply\r\n\r\nThanks.\r\n", _envelope("alice@example.test", "carol@other.test"),
        received=NOW + timedelta(hours=2), out=True,
    )  # fmt: skip
    await _write(journal, blobs, b"Subject: x\r\n\r\nx\r\n", _envelope("a@third.test", "b@other.test"))  # not ours
    segment = tmp_path / "journal" / "example.test" / "2026-06-15.zst"
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    everything = await store.search_journal(JournalQuery())
    assert [(r.sender, r.is_outgoing) for r in everything] == [
        ("carol@other.test", False),
        ("alice@example.test", True),
    ]
    (found,) = await store.search_journal(JournalQuery(recipient="bcc@example.test"))
    assert found.recipients == ("alice@example.test", "bcc@example.test") and found.size == len(MESSAGE)
    assert [r.sender for r in await store.search_journal(JournalQuery(sender="alice@example.test"))] == [
        "alice@example.test"
    ]
    later = NOW + timedelta(hours=1)
    assert [r.is_outgoing for r in await store.search_journal(JournalQuery(since=later))] == [True]
    assert [r.is_outgoing for r in await store.search_journal(JournalQuery(until=later))] == [False]
    entry = await journal.read(found)
    assert entry.message == MESSAGE
    assert [r.address for r in entry.envelope.recipients] == ["alice@example.test", "bcc@example.test"]
    # the segment is compressed, a plain zstd stream of frames (readable with the zstd tool as well)
    data = segment.read_bytes()
    assert MESSAGE not in data
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(data[found.offset : found.offset + found.length])
    assert plain.startswith(MAGIC) and plain.endswith(MESSAGE)


async def test_a_large_message_streams_from_its_blob(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    await store.set_journal_domain("example.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    big = b"Subject: big\r\n\r\n" + os.urandom(3 * 2**20).hex().encode()  # spills to disk, several chunks
    writer = blobs.create()
    writer.write(big)
    assert writer.in_memory() is None
    await journal(_envelope("x@other.test", "alice@example.test"), writer, received=NOW, is_outgoing=False)
    (record,) = await store.search_journal(JournalQuery())
    assert (await journal.read(record)).message == big
    assert record.length < len(big)


async def test_mbox_export_keeps_the_envelope(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    await store.set_journal_domain("example.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    await _write(journal, blobs, MESSAGE, _envelope("carol@other.test", "alice@example.test", "bcc@example.test"))
    await _write(journal, blobs, b"Subject: two\r\n\r\nFrom here on.\r\n", _envelope("", "alice@example.test"))
    out = tmp_path / "export.mbox"
    with open(out, "wb") as handle:
        entries = [await journal.read(r) for r in await store.search_journal(JournalQuery())]
        assert write_mbox(entries, handle) == 2
    box = mbox_module.mbox(out)
    messages = list(box)
    box.close()
    assert [m["Subject"] for m in messages] == ["contract", "two"]
    assert messages[0].get_all("X-Envelope-To") == ["<alice@example.test>", "<bcc@example.test>"]
    assert messages[0]["X-Envelope-From"] == "<carol@other.test>"
    assert messages[1].get_from().startswith("MAILER-DAEMON ")  # the null sender
    text = out.read_bytes()
    assert b"\n>From the desk of Carol.\n" in text and b"\n>From here on.\n" in text  # mboxrd quoting


async def test_old_segments_expire_and_finished_days_are_sealed(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    await store.set_journal_domain("example.test", retention_days=30)
    await store.set_journal_domain("keep.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    for days_ago in (45, 10, 0):
        received = NOW - timedelta(days=days_ago)
        await _write(journal, blobs, MESSAGE, _envelope("a@keep.test", "b@example.test"), received=received)
    root = tmp_path / "journal"
    assert await journal.expire(dry_run=True) == [root / "example.test" / "2026-05-01.zst"]
    assert (root / "example.test" / "2026-05-01.zst").exists()
    expired = await journal.expire()
    assert expired == [root / "example.test" / "2026-05-01.zst"] and not expired[0].exists()
    assert len(await store.search_journal(JournalQuery(domain="example.test"))) == 2
    assert len(await store.search_journal(JournalQuery(domain="keep.test"))) == 3  # kept for ever
    assert stat.S_IMODE((root / "example.test" / "2026-06-05.zst").stat().st_mode) == 0o400  # sealed
    assert stat.S_IMODE((root / "example.test" / "2026-06-15.zst").stat().st_mode) == 0o600  # today's, open


async def test_delivery_journals_before_it_stores(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    account_id = await add_account(store, "alice@example.test")
    account = await store.get_account("alice@example.test")
    assert account is not None
    await store.set_journal_domain("example.test", retention_days=0)
    delivery = LocalDelivery(store, queue=store)
    envelope = _envelope("carol@other.test", "alice@example.test")
    copy = LocalCopy(account=account, recipients=envelope.recipients)

    async def accept() -> None:
        writer = blobs.create()
        writer.write(MESSAGE)
        await delivery.accept(
            [copy], [], blob=writer, structure=parse_message(MESSAGE).dumps(), envelope=envelope,
            received=NOW, now=NOW, account_id=None,
        )  # fmt: skip

    delivery.journal = _journal(store, blobs, tmp_path / "journal")
    await accept()
    (record,) = await store.search_journal(JournalQuery())
    assert not record.is_outgoing  # the MX passes no submitting account
    inbox = await mailbox(store, account_id, INBOX)
    assert len(await store.messages(inbox.id)) == 1
    # a journal that cannot be written: the delivery fails (the session answers 451), nothing stored
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the journal directory should be")
    delivery.journal = _journal(store, blobs, blocked)
    with pytest.raises(StoreError):
        await accept()
    assert len(await store.messages(inbox.id)) == 1


async def test_journal_domains_are_switched_on_and_off(store: Store) -> None:
    await store.set_journal_domain("example.test", retention_days=7)
    assert await store.journal_domains() == {"example.test": 7}
    await store.remove_journal_domain("example.test")
    assert await store.journal_domains() == {}
    with pytest.raises(StoreError):
        await store.remove_journal_domain("example.test")


def test_segment_names_are_days_in_utc() -> None:
    late = datetime(2026, 6, 15, 23, 30, tzinfo=UTC).astimezone(datetime.now().astimezone().tzinfo)
    assert f"{late.astimezone(UTC):%Y-%m-%d}.zst" == "2026-06-15.zst"


async def test_concurrent_writers_share_a_segment(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    await store.set_journal_domain("example.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    contents = [b"Subject: %d\r\n\r\n" % n + os.urandom(200 + n).hex().encode() for n in range(40)]

    async def one(content: bytes) -> None:
        await _write(journal, blobs, content, _envelope("x@other.test", "alice@example.test"))

    await asyncio.gather(*(one(content) for content in contents))
    records = await store.search_journal(JournalQuery())
    spans = sorted((r.offset, r.offset + r.length) for r in records)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))  # frames never overlap
    assert spans[-1][1] == (tmp_path / "journal" / "example.test" / "2026-06-15.zst").stat().st_size
    assert sorted([(await journal.read(r)).message for r in records]) == sorted(contents)
    journal.close()


async def test_two_journals_on_one_segment_never_interleave_frames(
    store: Store, blobs: FileBlobs, tmp_path: Path
) -> None:
    # Two Journal objects share only the file, as two MX processes do: only the segment's flock orders them.
    await store.set_journal_domain("example.test", retention_days=0)
    journals = [_journal(store, blobs, tmp_path / "journal") for _ in range(2)]
    contents = [b"Subject: %d\r\n\r\n" % n + os.urandom(2000 + n).hex().encode() for n in range(60)]

    async def one(number: int, content: bytes) -> None:
        await _write(journals[number % 2], blobs, content, _envelope("x@other.test", "alice@example.test"))

    await asyncio.gather(*(one(n, content) for n, content in enumerate(contents)))
    records = await store.search_journal(JournalQuery())
    spans = sorted((r.offset, r.offset + r.length) for r in records)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    assert sorted([(await journals[0].read(r)).message for r in records]) == sorted(contents)
    for journal in journals:
        journal.close()


async def test_a_segment_is_a_plain_zstd_stream(store: Store, blobs: FileBlobs, tmp_path: Path) -> None:
    need(shutil.which("zstd") is not None, "zstd not installed (Debian package zstd)")
    await store.set_journal_domain("example.test", retention_days=0)
    journal = _journal(store, blobs, tmp_path / "journal")
    for content in (MESSAGE, b"Subject: second\r\n\r\nTwo.\r\n"):
        await _write(journal, blobs, content, _envelope("carol@other.test", "alice@example.test"))
    segment = tmp_path / "journal" / "example.test" / "2026-06-15.zst"
    result = subprocess.run(["zstd", "-dc", str(segment)], capture_output=True, check=True, timeout=30)
    assert result.stdout.count(MAGIC) == 2 and MESSAGE in result.stdout
    journal.close()
