"""Content-addressed blobs: small ones in the store's database, the others as files on local (or shared) disk.

Small blobs (at most `INLINE_LIMIT` octets, most mail) that reach the store with the rows naming them are
written as rows of the database's ``blobs`` table in the same transaction: no file, no fsync of their own, one
group commit for a whole batch of messages. A file per message cost an inode, two fsyncs and a rename; on this
project's machines that was most of the kernel time of receiving mail (see docs/architecture.md). SQLite's
own measurements find blobs under about 100 KB faster to read from the database than from files, too.

Files: ``<root>/ab/abcdef...`` named by the SHA-256 of the content; ``<root>/tmp/`` holds blobs being
written. A file blob becomes visible only by an atomic rename after its content is fsynced, and the rename
is made durable by fsyncing the directory, so a crash leaves either the whole blob or none (a stray temp
file, removed at a later start once it is an hour old: younger ones may belong to another process writing
now, such as a running server while `pochta import` or `pochta backup` opens the same blobs). A small blob
committed on its own (not with a store write) is a file too; reads look in the database first, then the
files, so either place serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from pochta.store.api import BlobRef, NotFound, StoreError

_HEX = frozenset("0123456789abcdef")
_SHARDS = tuple(f"{i:02x}" for i in range(256))
_STRAY_AGE = 3600.0  # seconds since a temp file was last written before it counts as left by a crash
_SPILL = 256 * 1024  # octets a writer keeps in memory before it streams to its temp file
INLINE_LIMIT = 128 * 1024  # octets up to which a blob stored with its rows lives in the database


@contextlib.contextmanager
def _file_of_blob(blob_id: str) -> Iterator[None]:
    """Reading a blob's file: its absence is the blob's (NotFound)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFound(f"no blob {blob_id}") from exc


def _check_id(blob_id: str) -> None:
    if len(blob_id) != 64 or not _HEX.issuperset(blob_id):
        raise NotFound(f"no blob {blob_id!r}")


class FileBlobWriter:
    """Streams one blob while hashing it; `commit` makes it durable.

    The first `_SPILL` octets stay in memory, and a small blob reaches the disk only in `commit`, on the
    sync pool, as a temp file beside its final shard (see FileBlobs). Larger blobs spill to a temp file
    in ``tmp/`` as they stream in.
    """

    def __init__(self, blobs: FileBlobs) -> None:
        self._blobs = blobs
        self._spill_path: Path | None = None
        self._spill_fd = -1
        self._pending = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False
        self._committed: BlobRef | None = None

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._size += len(data)
        self._pending += data
        if len(self._pending) >= _SPILL:
            if self._spill_path is None:
                self._spill_path = self._blobs.root / "tmp" / f"{secrets.token_hex(12)}.tmp"
                self._spill_fd = os.open(self._spill_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(self._spill_fd, self._pending)
            self._pending.clear()

    def in_memory(self) -> bytes | None:
        """The whole content if it is still held in memory (small blobs), else None."""
        return None if self._spill_path is not None or self._done else bytes(self._pending)

    def inline(self) -> bytes | None:
        """The content when the store is to write it as a row beside the rows that name it (see the module
        doc): small, still in memory, and these blobs have a database. None: commit it as a file."""
        blobs = self._blobs
        if blobs.database is None or self._size > blobs.inline_limit:
            return None
        return self.in_memory()

    def spilled(self) -> str | None:
        if self._spill_path is None or self._done:
            return None
        if self._pending:
            os.write(self._spill_fd, self._pending)
            self._pending.clear()
        return str(self._spill_path)

    @property
    def ref(self) -> BlobRef:
        """Id and size of what was written so far (the blob's final name once all is written)."""
        return BlobRef(id=self._hash.hexdigest(), size=self._size)

    async def commit(self) -> BlobRef:
        return await asyncio.get_running_loop().run_in_executor(self._blobs.sync_pool, self.commit_sync)

    def commit_sync(self) -> BlobRef:
        """`commit` for a worker thread (the store's writer runs it before the metadata commit).
        Committing twice is harmless; committing after `abort` is an error."""
        if self._committed is not None:
            return self._committed
        if self._done:
            raise StoreError("blob writer was aborted")
        self._done = True
        ref = self.ref
        try:
            self._finish(ref.id)
        finally:
            self._discard()
        self._committed = ref
        return ref

    def _finish(self, blob_id: str) -> None:
        blobs = self._blobs
        final = blobs.file_of(blob_id)
        if os.path.exists(final):  # the same octets are stored already
            return
        if self._spill_path is None:
            tmp = blobs.root / "tmp" / blob_id[:2] / f"{secrets.token_hex(8)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            tmp, fd = self._spill_path, self._spill_fd
            self._spill_path, self._spill_fd = None, -1
        try:
            if self._pending:
                os.write(fd, self._pending)
            if blobs.fsync:
                os.fsync(fd)
                blobs.fsyncs += 1
        finally:
            os.close(fd)
        os.replace(tmp, final)
        if blobs.fsync:
            blobs.sync_directory(blob_id[:2])

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._discard()

    def _discard(self) -> None:
        self._pending.clear()
        if self._spill_path is not None:
            os.close(self._spill_fd)
            self._spill_path.unlink(missing_ok=True)
            self._spill_path = None


_READ_INLINE = 64 * 1024  # octets read on the event loop itself (see FileBlobs.read)


class FileBlobs:
    """Shards ``00``..``ff`` hold the blobs, ``tmp/00``..``tmp/ff`` the temp files of small blobs being
    committed (one temp directory per shard: creating files in one shared directory ran at a fifth of the
    speed here, measured), ``tmp/`` itself the spill files of large blobs."""

    def __init__(
        self, root: Path, *, fsync: bool = True, database: Path | None = None, inline_limit: int = INLINE_LIMIT
    ) -> None:
        self.root = root
        self.fsync = fsync
        self.database = database  # the store's SQLite file, whose `blobs` table holds the small blobs
        self.inline_limit = inline_limit
        self._local = threading.local()  # one read-only connection per thread that reads
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # fsyncs in parallel let the filesystem fold them into shared journal commits (ext4, xfs): measured
        # here, 1 thread 810 fsyncs/s, 8 threads 5,800/s; more threads only fight over the GIL.
        self.sync_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blob-fsync")
        self._dir_fds: dict[str, int] = {}
        self.fsyncs = 0  # file and directory fsyncs made (benchmarks read it)
        tmp = root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for shard in _SHARDS:
            (root / shard).mkdir(exist_ok=True)
            (tmp / shard).mkdir(exist_ok=True)
        old = time.time() - _STRAY_AGE
        for stray in (*tmp.glob("*.tmp"), *tmp.glob("??/*.tmp")):  # left by a crash mid-write; never blobs
            with contextlib.suppress(FileNotFoundError):
                if stray.stat().st_mtime < old:
                    stray.unlink()

    def file_of(self, blob_id: str) -> Path:
        _check_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    def sync_directory(self, shard: str) -> None:
        fd = self._dir_fds.get(shard)
        if fd is None:
            fd = self._dir_fds.setdefault(shard, os.open(self.root / shard, os.O_RDONLY | os.O_DIRECTORY))
        os.fsync(fd)
        self.fsyncs += 1

    def create(self) -> FileBlobWriter:
        return FileBlobWriter(self)

    async def put(self, data: bytes) -> BlobRef:
        writer = self.create()
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        return await writer.commit()

    async def read(self, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
        if end is not None and end - start <= _READ_INLINE:
            # A small read from the page cache takes microseconds; a hop to a thread and back costs more,
            # and FETCH of many messages would pay it once per message.
            return self.read_sync(blob_id, start, end)
        return await asyncio.to_thread(self.read_sync, blob_id, start, end)

    def read_sync(self, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
        _check_id(blob_id)
        # substr() counts a BLOB's octets from 1 and stops at its end
        args: tuple[object, ...] = (start + 1, blob_id) if end is None else (start + 1, max(0, end - start), blob_id)
        row = self._row(f"SELECT substr(data, ?{'' if end is None else ', ?'}) FROM blobs WHERE id = ?", args)
        if row is not None:
            return bytes(row[0] or b"")  # substr() of an empty BLOB is NULL
        with _file_of_blob(blob_id), open(self.file_of(blob_id), "rb") as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(max(0, end - start))

    def open(self, blob_id: str) -> BinaryIO:
        """The blob for reading from the start, wherever it lives."""
        _check_id(blob_id)
        row = self._row("SELECT data FROM blobs WHERE id = ?", (blob_id,))
        if row is not None:
            return io.BytesIO(row[0])
        with _file_of_blob(blob_id):
            return open(self.file_of(blob_id), "rb")

    def size(self, blob_id: str) -> int:
        _check_id(blob_id)
        row = self._row("SELECT length(data) FROM blobs WHERE id = ?", (blob_id,))
        if row is not None:
            return int(row[0])
        with _file_of_blob(blob_id):
            return os.stat(self.file_of(blob_id)).st_size

    def path(self, blob_id: str) -> str:
        """The file of a blob kept as a file: every blob over `inline_limit`, or one committed on its own."""
        return str(self.file_of(blob_id))

    async def delete(self, blob_id: str) -> None:
        self.file_of(blob_id).unlink(missing_ok=True)
        if self.database is not None:
            await asyncio.to_thread(self._delete_row, blob_id)

    def _delete_row(self, blob_id: str) -> None:
        conn = sqlite3.connect(self.database or "", timeout=30.0, isolation_level=None)
        try:
            conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
        finally:
            conn.close()

    async def exists(self, blob_id: str) -> bool:
        _check_id(blob_id)
        is_row = self._row("SELECT 1 FROM blobs WHERE id = ?", (blob_id,)) is not None
        return is_row or self.file_of(blob_id).exists()

    def _row(self, sql: str, args: tuple[object, ...]) -> tuple[Any, ...] | None:
        """The row `sql` selects from the blobs table; None when it has none, or there is no database."""
        if self.database is None:
            return None
        row: tuple[Any, ...] | None = self._reader().execute(sql, args).fetchone()
        return row

    def ids(self) -> Iterator[str]:
        if self.database is not None:
            yield from (row[0] for row in self._reader().execute("SELECT id FROM blobs"))
        for shard in _SHARDS:
            with os.scandir(self.root / shard) as entries:
                for entry in entries:
                    if len(entry.name) == 64 and _HEX.issuperset(entry.name):
                        yield entry.name

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Read-only and in autocommit: each query sees the last commit. A read from the page cache takes
            # microseconds, so the event loop reads small blobs itself (see `read`).
            conn = sqlite3.connect(
                f"file:{self.database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        self.sync_pool.shutdown(wait=True)
        for fd in self._dir_fds.values():
            os.close(fd)
        self._dir_fds.clear()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
