from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from pochta.store.api import NotFound
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
