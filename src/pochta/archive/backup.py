"""Online backups, restores and `pochta verify`.

A backup directory is laid out like a data directory: the database (copied with the store's online
backup, one consistent snapshot while the server keeps writing; it carries the small blobs, which are rows
of it) and ``blobs/`` with every other blob that snapshot refers to. Blobs are immutable and
content-addressed, and a message's blob is durable no later than its row commits, so every blob a snapshot
names exists; blobs written after the snapshot do not matter. Each blob is re-hashed as it is copied (or,
carried in the snapshot, in the copy), so a backup never carries a damaged blob unnoticed.
``BACKUP.json`` is written last: a directory without it is an unfinished backup.

Restoring is the same copy the other way, from a backup directory into an empty data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pochta.archive.importer import NoProgress, Progress
from pochta.store.api import Blobs, NotFound, Store, StoreError

MARKER = "BACKUP.json"
_PARALLEL = 8  # blob copies and hashes at once: their fsyncs share journal commits
# beside the database and blobs: the kept self-signed certificate, and the compliance journal's segments
# (append-only: copied after the database snapshot, they hold every record its index names)
_COPIED_DIRECTORIES = ("tls", "journal")


class BackupError(StoreError):
    pass


@dataclass(slots=True)
class CopyReport:
    rows: int = 0  # blob references in the copied database
    blobs: int = 0
    octets: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class VerifyReport:
    rows: int = 0
    blobs: int = 0
    octets: int = 0
    unreferenced: int = 0  # blobs no row refers to (left by expunges; harmless)
    problems: list[str] = field(default_factory=list)


def check_empty(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; give a new or empty directory")


def _copy_blob(source: Blobs, target: Blobs, blob_id: str, *, is_present: bool) -> tuple[int, str | None]:
    """Copy one blob, hashing it on the way; returns (octets, problem). A blob the target has already (a
    small one, carried in the copied database) is only re-hashed there."""
    if is_present:
        digest, size = _hash_blob(target, blob_id)
        return (size, None) if digest == blob_id else (0, f"blob {blob_id} is damaged: its content hashes to {digest}")
    writer = target.create()
    try:
        with source.open(blob_id) as handle:
            while chunk := handle.read(1024 * 1024):
                writer.write(chunk)
    except NotFound:
        writer.abort()
        return 0, f"blob {blob_id} is missing"
    except BaseException:
        writer.abort()
        raise
    if writer.ref.id != blob_id:
        writer.abort()
        return 0, f"blob {blob_id} is damaged: its content hashes to {writer.ref.id}"
    return writer.commit_sync().size, None


async def copy_store(
    store: Store,
    blobs: Blobs,
    *,
    target_dir: Path,
    target_blobs: Blobs,
    source_dir: Path,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy `store`'s database (online, one snapshot) into `target_dir`, then the blobs it refers to."""
    progress = progress or NoProgress()
    uses = await store.backup(str(target_dir))
    report = CopyReport(rows=len(uses))
    wanted = sorted({use.blob_id for use in uses})
    sizes = {use.blob_id: use.size or 0 for use in uses}
    progress.add_total(sum(sizes.values()))
    present = {blob_id for blob_id in wanted if await target_blobs.exists(blob_id)}
    for start in range(0, len(wanted), _PARALLEL * 16):
        chunk = wanted[start : start + _PARALLEL * 16]
        results = await asyncio.gather(
            *(asyncio.to_thread(_copy_blob, blobs, target_blobs, b, is_present=b in present) for b in chunk)
        )
        for blob_id, (octets, problem) in zip(chunk, results, strict=True):
            if problem:
                report.problems.append(problem)
            else:
                report.blobs += 1
                report.octets += octets
            progress.advance(messages=1, octets=sizes[blob_id])
    for name in _COPIED_DIRECTORIES:
        if (source_dir / name).is_dir() and not (target_dir / name).exists():
            shutil.copytree(source_dir / name, target_dir / name)
    return report


def write_marker(directory: Path, report: CopyReport, *, now: datetime) -> None:
    marker = {
        "created": now.astimezone(UTC).isoformat(timespec="seconds"),
        "rows": report.rows,
        "blobs": report.blobs,
        "octets": report.octets,
        "problems": report.problems,
    }
    tmp = directory / (MARKER + ".new")
    with open(tmp, "w") as handle:
        json.dump(marker, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / MARKER)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_marker(directory: Path) -> dict[str, object]:
    try:
        value = json.loads((directory / MARKER).read_text())
    except FileNotFoundError as exc:
        raise BackupError(f"{directory} holds no finished backup (no {MARKER})") from exc
    except ValueError as exc:
        raise BackupError(f"{directory / MARKER}: {exc}") from exc
    if not isinstance(value, dict):
        raise BackupError(f"{directory / MARKER}: not a backup marker")
    return value


def _hash_blob(blobs: Blobs, blob_id: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with blobs.open(blob_id) as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def verify(store: Store, blobs: Blobs, *, progress: Progress | None = None) -> VerifyReport:
    """Check the database, every blob against its hash, and every row against its blob."""
    progress = progress or NoProgress()
    report = VerifyReport()
    report.problems += await store.check_database()
    uses = await store.blob_uses()
    report.rows = len(uses)
    ids = await asyncio.to_thread(lambda: sorted(blobs.ids()))
    sizes: dict[str, int] = {}
    progress.add_total(sum(await asyncio.to_thread(lambda: [_stat_size(blobs, b) for b in ids])))
    for start in range(0, len(ids), _PARALLEL * 16):
        chunk = ids[start : start + _PARALLEL * 16]
        results = await asyncio.gather(*(asyncio.to_thread(_hash_blob, blobs, b) for b in chunk))
        for blob_id, (digest, size) in zip(chunk, results, strict=True):
            if digest != blob_id:
                report.problems.append(f"blob {blob_id} is damaged: its content hashes to {digest}")
            sizes[blob_id] = size
            report.blobs += 1
            report.octets += size
            progress.advance(messages=1, octets=size)
    referenced = set()
    for use in uses:
        referenced.add(use.blob_id)
        found = sizes.get(use.blob_id)
        if found is None:
            report.problems.append(f"{use.where}: blob {use.blob_id} is missing")
        elif use.size is not None and use.size != found:
            report.problems.append(f"{use.where}: row says {use.size} octets, blob {use.blob_id} has {found}")
    report.unreferenced = len(set(sizes) - referenced)
    return report


def _stat_size(blobs: Blobs, blob_id: str) -> int:
    try:
        return blobs.size(blob_id)
    except NotFound:
        return 0
