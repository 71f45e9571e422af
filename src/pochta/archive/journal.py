"""The compliance journal: a copy of every message received (MX) and sent (submission) for the domains
that have it switched on, with its SMTP envelope, in append-only zstd-compressed segment files.

Layout: ``<data_dir>/journal/<domain>/<YYYY-MM-DD>.zst``, one segment per domain and UTC day. Each record
is one zstd frame holding ``POCHTA-JOURNAL/1``, a JSON line (envelope, time, direction) and the message's
octets as accepted. The store keeps an index row per record (segment, offset, length, sender, recipients,
time) for search; the segment files are only ever appended to, and a day's segment is made read-only
(0400) once the day is over. Nothing of it is reachable through IMAP or POP3.

Durability: the record is written and fsynced (and its index committed) before the message is stored,
so before the ``250``; a journal that cannot be written makes the delivery fail with ``451``. A crash
after the frame is written but before its index commits leaves unindexed octets at the end of the
segment, which reading by index skips; the next record is appended after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import zstandard

from pochta.mail.envelope import Envelope
from pochta.store.api import ArchiveStore, Blobs, BlobWriter, JournalRecord, NewJournalRecord, StoreError

log = logging.getLogger(__name__)

MAGIC = b"POCHTA-JOURNAL/1\n"
_CHUNK = 1 << 20
_SEGMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})\.zst$")
_LEVEL = 6  # zstd level: a good ratio on mail text at well over the speed of an MX (bench/journal.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One record read back: its index row, its envelope and the message."""

    record: JournalRecord
    envelope: Envelope
    message: bytes


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class Journal:
    """Writes, reads and expires journal records; `LocalDelivery.journal` calls it for each accepted message."""

    def __init__(
        self,
        store: ArchiveStore,
        blobs: Blobs,
        root: Path,
        *,
        now: Callable[[], datetime],
        fsync: bool = True,
        cache_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self.root = root
        self._now = now
        self._fsync = fsync
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, int]] | None = None
        # writers of one segment share fsyncs, so more threads than cores pay off (like the blob store's pool)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="journal")
        self._segments_open: dict[Path, _Segment] = {}
        self._locks_guard = threading.Lock()

    async def domains(self) -> dict[str, int]:
        """The journaled domains (cached a few seconds, so `pochta journal enable` reaches a running server)."""
        clock = time.monotonic()
        if self._cached is None or clock - self._cached[0] > self._cache_seconds:
            self._cached = (clock, await self._store.journal_domains())
        return self._cached[1]

    async def __call__(self, envelope: Envelope, blob: BlobWriter, *, received: datetime, is_outgoing: bool) -> None:
        """Journal one accepted message for every journaled domain it touches (sender's or a recipient's)."""
        enabled = await self.domains()
        if not enabled:
            return
        touched = [_domain_of(envelope.mail_from)] if envelope.mail_from else []
        touched += [_domain_of(r.address) for r in envelope.recipients]
        chosen = [domain for domain in dict.fromkeys(touched) if domain in enabled]
        if not chosen:
            return
        content = blob.in_memory()
        source: bytes | Path = content if content is not None else Path(self._blobs.path((await blob.commit()).id))
        header = _header(envelope, received=received, is_outgoing=is_outgoing)
        segment = f"{received.astimezone(UTC):%Y-%m-%d}.zst"
        try:
            loop = asyncio.get_running_loop()
            placed = await asyncio.gather(
                *(loop.run_in_executor(self._pool, self._append, domain, segment, header, source) for domain in chosen)
            )
        except OSError as exc:
            raise StoreError(f"journal write failed: {exc}") from exc
        size = blob.ref.size
        records = [
            NewJournalRecord(
                domain=domain,
                segment=segment,
                offset=offset,
                length=length,
                received=received,
                is_outgoing=is_outgoing,
                sender=envelope.mail_from,
                recipients=tuple(r.address for r in envelope.recipients),
                size=size,
            )
            for domain, (offset, length) in zip(chosen, placed, strict=True)
        ]
        await self._store.add_journal_records(records)

    def _segment(self, path: Path) -> _Segment:
        with self._locks_guard:
            segment = self._segments_open.get(path)
            if segment is None:
                segment = self._segments_open[path] = _Segment()
            return segment

    def _append(self, domain: str, segment: str, header: bytes, source: bytes | Path) -> tuple[int, int]:
        """Append one frame to the segment and make it durable; returns (offset, length).

        Small frames are compressed before the segment's lock is taken; writers that meet share one fsync
        (group commit: whoever syncs covers every frame written before it)."""
        directory = self.root / domain
        path = directory / segment
        frame = _compress(header, source) if isinstance(source, bytes) else None
        state = self._segment(path)
        with state.write_lock:
            is_new_directory = not directory.exists()
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # Other processes append to the same segment (the MX processes of [smtp] processes): the
                # thread lock orders this process's writers, the flock all of them, frame by frame.
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    offset = os.fstat(fd).st_size
                    try:
                        if frame is not None:
                            os.write(fd, frame)
                        else:
                            assert isinstance(source, Path)
                            _write_streamed(fd, header, source)
                        length = os.fstat(fd).st_size - offset
                    except BaseException:
                        with contextlib.suppress(OSError):  # no half frame left (a crash may still leave one)
                            os.ftruncate(fd, offset)
                        raise
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except BaseException:
                os.close(fd)
                raise
            state.written += 1
            ticket = state.written
        try:
            if self._fsync:
                with state.sync_lock:
                    if state.synced < ticket:  # not covered by another writer's fsync yet
                        covered = state.written
                        os.fsync(fd)
                        state.synced = covered
        finally:
            os.close(fd)
        if self._fsync and offset == 0:  # a new file: make its name durable too
            _sync_directory(directory)
            if is_new_directory:
                _sync_directory(self.root)
        return offset, length

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # ---- reading ----

    def read_sync(self, record: JournalRecord) -> Entry:
        path = self.root / record.domain / record.segment
        with open(path, "rb") as handle:
            handle.seek(record.offset)
            frame = handle.read(record.length)
        data = zstandard.ZstdDecompressor().decompressobj().decompress(frame)
        if not data.startswith(MAGIC):
            raise StoreError(f"journal record {record.id}: not a journal frame")
        line_end = data.index(b"\n", len(MAGIC))
        meta = json.loads(data[len(MAGIC) : line_end])
        return Entry(
            record=record, envelope=Envelope.loads(json.dumps(meta["envelope"]).encode()), message=data[line_end + 1 :]
        )

    async def read(self, record: JournalRecord) -> Entry:
        return await asyncio.to_thread(self.read_sync, record)

    # ---- retention ----

    async def expire(self, *, dry_run: bool = False) -> list[Path]:
        """Delete the segments older than their domain's retention and seal (0400) the finished ones;
        returns the segments deleted (or, with `dry_run`, that would be)."""
        today = self._now().astimezone(UTC).date()
        domains = await self._store.journal_domains()
        removed: list[Path] = []
        for domain, segment in await asyncio.to_thread(self._segments):
            day = datetime.strptime(segment[:10], "%Y-%m-%d").replace(tzinfo=UTC).date()
            path = self.root / domain / segment
            days = domains.get(domain, 0)
            if days and day < today - timedelta(days=days):
                removed.append(path)
                if not dry_run:
                    await self._store.drop_journal_segment(domain, segment)  # the index first, then the file
                    await asyncio.to_thread(path.unlink, True)
                    log.info("journal segment expired domain=%s segment=%s", domain, segment)
            elif day < today and not dry_run:
                await asyncio.to_thread(_seal, path)
        return removed

    def _segments(self) -> list[tuple[str, str]]:
        if not self.root.is_dir():
            return []
        return sorted(
            (directory.name, path.name)
            for directory in self.root.iterdir()
            if directory.is_dir()
            for path in directory.iterdir()
            if _SEGMENT.match(path.name)
        )


class _Segment:
    """Writers of one segment file: appends in turn, fsyncs shared."""

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self.sync_lock = threading.Lock()
        self.written = 0  # frames written
        self.synced = 0  # frames known durable


def _compress(header: bytes, content: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_LEVEL).compress(MAGIC + header + content)


def _write_streamed(fd: int, header: bytes, source: Path) -> None:
    """A large message's frame, compressed as it is read from its blob file, never whole in memory."""
    compressor = zstandard.ZstdCompressor(level=_LEVEL).compressobj()
    pieces = [compressor.compress(MAGIC + header)]
    with open(source, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            pieces.append(compressor.compress(chunk))
            if sum(map(len, pieces)) >= _CHUNK:
                os.write(fd, b"".join(pieces))
                pieces = []
    pieces.append(compressor.flush())
    os.write(fd, b"".join(pieces))


def _header(envelope: Envelope, *, received: datetime, is_outgoing: bool) -> bytes:
    meta = {
        "envelope": json.loads(envelope.dumps()),
        "received": received.astimezone(UTC).isoformat(),
        "direction": "out" if is_outgoing else "in",
    }
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _seal(path: Path) -> None:
    if path.stat().st_mode & 0o222:
        path.chmod(0o400)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- mbox export ----------------------------------------------------------------------------------------

_FROM_LINE = re.compile(rb"^>*From ")


def write_mbox(entries: Iterable[Entry], out: BinaryIO) -> int:
    """Write entries as an mboxrd file (``>From`` quoting, LF line ends), the envelope in ``X-Envelope-From``
    and ``X-Envelope-To`` fields before the message's own (Bcc recipients are only there); returns the count."""
    count = 0
    for entry in entries:
        record = entry.record
        sender = record.sender or "MAILER-DAEMON"
        stamp = record.received.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y")
        out.write(f"From {sender} {stamp}\n".encode())
        out.write(f"X-Envelope-From: <{record.sender}>\n".encode())
        for address in record.recipients:
            out.write(f"X-Envelope-To: <{address}>\n".encode())
        out.write(f"X-Journal-Direction: {'out' if record.is_outgoing else 'in'}\n".encode())
        out.write(f"X-Journal-Received: {record.received.astimezone(UTC).isoformat()}\n".encode())
        for line in _lines(entry.message):
            out.write(b">" + line if _FROM_LINE.match(line) else line)
        out.write(b"\n")
        count += 1
    return count


def _lines(message: bytes) -> Sequence[bytes]:
    text = message.replace(b"\r\n", b"\n")
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return text.splitlines(keepends=True)
