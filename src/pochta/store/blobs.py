"""Content-addressed blob files on local (or shared) disk.

Layout: ``<root>/ab/abcdef...`` named by the SHA-256 of the content; ``<root>/tmp/`` holds blobs being
written. A blob becomes visible only by an atomic rename after its content is fsynced, and the rename is
made durable by fsyncing the directory, so a crash leaves either the whole blob or none (a stray temp file,
removed at the next start).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from pathlib import Path

from pochta.store.api import BlobRef, NotFound, StoreError

_HEX = frozenset("0123456789abcdef")


def _check_id(blob_id: str) -> None:
    if len(blob_id) != 64 or not _HEX.issuperset(blob_id):
        raise NotFound(f"no blob {blob_id!r}")


class FileBlobWriter:
    """Streams one blob to a temp file while hashing it; `commit` makes it durable."""

    def __init__(self, blobs: FileBlobs) -> None:
        self._blobs = blobs
        self._tmp = blobs.root / "tmp" / f"{secrets.token_hex(12)}.tmp"
        self._file = open(self._tmp, "wb", buffering=0)  # noqa: SIM115 - closed in commit/abort
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        # Page-cache writes of a chunk are cheap enough for the event loop; only fsync goes to a thread.
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    async def commit(self) -> BlobRef:
        if self._done:
            raise StoreError("blob writer already finished")
        self._done = True
        blob_id = self._hash.hexdigest()
        try:
            await asyncio.to_thread(self._finish, blob_id)
        except BaseException:
            self._discard()
            raise
        return BlobRef(id=blob_id, size=self._size)

    def _finish(self, blob_id: str) -> None:
        final = self._blobs.file_of(blob_id)
        if self._blobs.fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        if final.exists():  # same content stored before: keep the old file, drop ours
            self._tmp.unlink(missing_ok=True)
            return
        final.parent.mkdir(exist_ok=True)
        os.replace(self._tmp, final)
        if self._blobs.fsync:
            _fsync_dir(final.parent)

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._discard()

    def _discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class FileBlobs:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        for stray in (root / "tmp").iterdir():  # left by a crash mid-write; never visible as blobs
            stray.unlink(missing_ok=True)

    def file_of(self, blob_id: str) -> Path:
        _check_id(blob_id)
        return self.root / blob_id[:2] / blob_id

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
        return await asyncio.to_thread(self.read_sync, blob_id, start, end)

    def read_sync(self, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
        try:
            with open(self.file_of(blob_id), "rb") as handle:
                handle.seek(start)
                return handle.read() if end is None else handle.read(max(0, end - start))
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {blob_id}") from exc

    def path(self, blob_id: str) -> str:
        return str(self.file_of(blob_id))

    async def delete(self, blob_id: str) -> None:
        self.file_of(blob_id).unlink(missing_ok=True)

    async def exists(self, blob_id: str) -> bool:
        return self.file_of(blob_id).exists()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
