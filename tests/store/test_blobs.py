from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pochta.store.api import INBOX, BlobWriter, NewMessage, NotFound, Store, StoreError
from pochta.store.blobs import FileBlobs


async def test_put_read_ranges_and_dedupe(blobs: FileBlobs) -> None:
    data = b"Subject: hi\r\n\r\nbody\r\n"
    ref = await blobs.put(data)
    assert ref.id == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert await blobs.read(ref.id) == data
    assert await blobs.read(ref.id, 9, 11) == b"hi"
    assert await blobs.read(ref.id, 15) == b"body\r\n"
    again = await blobs.put(data)
    assert again == ref
    assert Path(blobs.path(ref.id)).read_bytes() == data
    assert await blobs.exists(ref.id)
    await blobs.delete(ref.id)
    assert not await blobs.exists(ref.id)
    with pytest.raises(NotFound):
        await blobs.read(ref.id)


async def test_streamed_writer_and_abort_leave_no_partial_blob(blobs: FileBlobs) -> None:
    writer = blobs.create()
    for chunk in (b"a" * 1000, b"b" * 1000):
        writer.write(chunk)
    ref = await writer.commit()
    assert await blobs.read(ref.id) == b"a" * 1000 + b"b" * 1000
    aborted = blobs.create()
    aborted.write(b"never visible")
    aborted.abort()
    assert [p for p in (blobs.root / "tmp").rglob("*") if p.is_file()] == []
    assert not await blobs.exists(hashlib.sha256(b"never visible").hexdigest())


async def test_stray_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    FileBlobs(tmp_path).close()
    (tmp_path / "tmp" / "crashed.tmp").write_bytes(b"half a large message")
    (tmp_path / "tmp" / "ab" / "0123.tmp").write_bytes(b"half a small message")
    (tmp_path / "tmp" / "cd" / "4567.tmp").write_bytes(b"another process is writing this one now")
    two_hours_ago = time.time() - 7200
    for old in ("crashed.tmp", "ab/0123.tmp"):
        os.utime(tmp_path / "tmp" / old, (two_hours_ago, two_hours_ago))
    FileBlobs(tmp_path).close()
    assert [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()] == [tmp_path / "tmp" / "cd" / "4567.tmp"]


async def test_ids_that_are_not_hashes_are_refused(blobs: FileBlobs) -> None:
    with pytest.raises(NotFound):
        await blobs.read("../../etc/passwd")


async def _inbox(store: Store) -> tuple[int, int]:
    await store.add_domain("example.test")
    account = await store.add_account("a@example.test", password_hash="h", scram=None)
    inbox = await store.get_mailbox(account.id, INBOX)
    assert inbox is not None
    return account.id, inbox.id


def _new(account_id: int, mailbox_id: int, writer: BlobWriter) -> NewMessage:
    ref = writer.ref
    return NewMessage(
        account_id=account_id,
        mailbox_id=mailbox_id,
        blob_id=ref.id,
        size=ref.size,
        structure=b"{}",
        internal_date=datetime.now(UTC),
    )


def _row_ids(blobs: FileBlobs) -> set[str]:
    assert blobs.database is not None
    with sqlite3.connect(blobs.database) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM blobs")}


async def test_a_small_blob_carried_by_an_append_is_a_row_of_its_commit(store: Store, blobs: FileBlobs) -> None:
    account_id, inbox_id = await _inbox(store)
    content = b"Subject: small\r\n\r\n" + b"x" * 10_000 + b"\r\n"
    writer = blobs.create()
    writer.write(content)
    assert writer.inline() == content
    await store.append([_new(account_id, inbox_id, writer)], blobs=[writer])
    blob_id = writer.ref.id
    assert _row_ids(blobs) == {blob_id}
    assert not Path(blobs.path(blob_id)).exists()  # no file, no fsync of its own
    assert await blobs.exists(blob_id)
    assert await blobs.read(blob_id) == content
    assert await blobs.read(blob_id, 9, 14) == b"small"
    assert await blobs.read(blob_id, len(content) - 3) == b"x\r\n"
    assert await blobs.read(blob_id, len(content) + 5, len(content) + 9) == b""
    with blobs.open(blob_id) as handle:
        assert handle.read() == content
    assert blobs.size(blob_id) == len(content)
    assert list(blobs.ids()) == [blob_id]
    # the same octets again (another recipient, a retry) are stored once
    again = blobs.create()
    again.write(content)
    await store.append([_new(account_id, inbox_id, again)], blobs=[again])
    assert _row_ids(blobs) == {blob_id}


async def test_an_empty_blob_is_a_row_that_reads_back_empty(store: Store, blobs: FileBlobs) -> None:
    account_id, inbox_id = await _inbox(store)
    writer = blobs.create()
    await store.append([_new(account_id, inbox_id, writer)], blobs=[writer])
    assert _row_ids(blobs) == {writer.ref.id}
    assert await blobs.read(writer.ref.id) == b""
    assert await blobs.read(writer.ref.id, 0, 10) == b""


async def test_a_large_blob_carried_by_an_append_is_a_file(store: Store, blobs: FileBlobs) -> None:
    account_id, inbox_id = await _inbox(store)
    content = b"y" * (blobs.inline_limit + 1)
    writer = blobs.create()
    writer.write(content)
    assert writer.inline() is None
    await store.append([_new(account_id, inbox_id, writer)], blobs=[writer])
    assert _row_ids(blobs) == set()
    assert Path(blobs.path(writer.ref.id)).read_bytes() == content
    assert blobs.size(writer.ref.id) == len(content)
    assert await blobs.read(writer.ref.id, 1, 4) == b"yyy"


async def test_a_failed_append_leaves_no_row_behind(store: Store, blobs: FileBlobs) -> None:
    account_id, inbox_id = await _inbox(store)
    writer = blobs.create()
    writer.write(b"Subject: refused\r\n\r\nbody\r\n")
    with pytest.raises(StoreError):
        await store.append([_new(account_id, inbox_id + 1000, writer)], blobs=[writer])  # no such mailbox
    assert _row_ids(blobs) == set()
    assert not await blobs.exists(writer.ref.id)


async def test_a_row_blob_can_be_deleted(store: Store, blobs: FileBlobs) -> None:
    account_id, inbox_id = await _inbox(store)
    writer = blobs.create()
    writer.write(b"Subject: gone\r\n\r\nbody\r\n")
    await store.append([_new(account_id, inbox_id, writer)], blobs=[writer])
    await blobs.delete(writer.ref.id)
    assert not await blobs.exists(writer.ref.id)
    with pytest.raises(NotFound):
        await blobs.read(writer.ref.id)


async def test_blobs_without_a_database_keep_every_blob_as_a_file(tmp_path: Path) -> None:
    files = FileBlobs(tmp_path / "blobs")
    try:
        writer = files.create()
        writer.write(b"Subject: file\r\n\r\n")
        assert writer.inline() is None
        ref = await writer.commit()
        assert Path(files.path(ref.id)).read_bytes() == b"Subject: file\r\n\r\n"
    finally:
        files.close()
