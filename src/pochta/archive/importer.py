"""Import of mbox files, trees of mbox files and Maildir(++) into an account, resumable.

Messages stream from the source into blob writers (large ones spill to disk), are parsed once, and
are appended in batches; each batch is one store transaction that also records how far the source was
read (`Imports.append_imported`). Killed at any moment, a re-run starts after the last committed batch:
no duplicate, no gap. Reading the next batch (a worker thread) overlaps the commit of the one before.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from pochta.archive import maildir, mbox
from pochta.delivery import parse_blob, parse_file
from pochta.store.api import (
    HIERARCHY_SEPARATOR,
    INBOX,
    Account,
    Blobs,
    BlobWriter,
    ImportProgress,
    NewMessage,
    SpecialUse,
    Store,
    StoreError,
)

STATE_FILE = ".pochta-export.json"  # written by the exporter beside mbox files; never a mailbox
_BATCH_MESSAGES = 500
_BATCH_OCTETS = 32 * 1024 * 1024


class SourceError(StoreError):
    """The source cannot be imported as asked (changed since the last run, not mail at all...)."""


class Progress(Protocol):
    def add_total(self, octets: int) -> None: ...
    def advance(self, *, messages: int, octets: int) -> None: ...


class NoProgress:
    def add_total(self, octets: int) -> None:
        pass

    def advance(self, *, messages: int, octets: int) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    source: str
    where: str  # "offset 1234" or a file name
    reason: str


@dataclass(slots=True)
class Report:
    messages: int = 0
    octets: int = 0
    already: int = 0  # messages a previous, interrupted run had imported
    created: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Prepared:
    """One message read and parsed, its blob not necessarily durable yet."""

    writer: BlobWriter
    structure: bytes
    flags: frozenset[str]
    internal_date: datetime


@dataclass(slots=True, kw_only=True)
class Batch:
    messages: list[Prepared]
    position: str  # the source's cursor after these messages
    octets: int  # source octets consumed (for the progress bar)
    skipped: list[Skipped]
    is_done: bool


def prepare(writer: BlobWriter, blobs: Blobs, *, flags: frozenset[str], internal_date: datetime) -> Prepared:
    """Parse a message just written (in memory when small, else committed and memory-mapped)."""
    structure = parse_blob(writer)
    if structure is None:
        ref = writer.commit_sync()
        structure = parse_file(blobs.path(ref.id))
    return Prepared(writer=writer, structure=structure, flags=flags, internal_date=internal_date)


def date_from_header(value: bytes | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (ValueError, TypeError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Source(Protocol):
    """A sequence of messages for one mailbox, read in batches from a position."""

    key: str  # for import_progress: "mbox:/abs/path"
    total: int  # octets, for the progress bar

    def start(self, position: str | None) -> int:
        """Seek to `position` (None: the beginning); returns the octets already behind it."""
        ...

    def read_batch(self, blobs: Blobs, *, max_messages: int, max_octets: int) -> Batch: ...
    def close(self) -> None: ...


class MboxSource:
    def __init__(self, path: Path, *, now: Callable[[], datetime]) -> None:
        self.path = path
        self.key = f"mbox:{path.resolve()}"
        self.total = path.stat().st_size
        self._now = now
        self._handle: BinaryIO | None = None
        self._reader: mbox.Reader | None = None

    def start(self, position: str | None) -> int:
        offset = int(position) if position else 0
        handle = open(self.path, "rb", buffering=1024 * 1024)  # noqa: SIM115 - closed by close()
        self._handle = handle
        if offset:
            handle.seek(offset)
            if offset > self.total or (offset < self.total and handle.read(5) != b"From "):
                raise SourceError(
                    f"{self.path} changed since the last import (no message at offset {offset});"
                    " use --restart to import it again from the start"
                )
        self._reader = mbox.Reader(handle, start=offset)
        return offset

    def read_batch(self, blobs: Blobs, *, max_messages: int, max_octets: int) -> Batch:
        assert self._reader is not None
        reader = self._reader
        start = reader.tell()
        prepared: list[Prepared] = []
        skipped: list[Skipped] = []
        octets = 0
        while len(prepared) < max_messages and octets < max_octets:
            writer = blobs.create()
            try:
                entry = reader.next(writer.write)
            except BaseException:
                writer.abort()
                raise
            if entry is None:
                writer.abort()
                return Batch(
                    messages=prepared,
                    position=str(reader.tell()),
                    octets=reader.tell() - start,
                    skipped=skipped,
                    is_done=True,
                )
            octets += entry.end - entry.start
            if isinstance(entry, mbox.Skip):
                writer.abort()
                skipped.append(Skipped(source=str(self.path), where=f"offset {entry.start}", reason=entry.reason))
                continue
            if entry.is_folder_data:
                writer.abort()
                continue
            date = entry.internal_date or date_from_header(entry.date_header) or self._now()
            prepared.append(prepare(writer, blobs, flags=entry.flags, internal_date=date))
        return Batch(
            messages=prepared, position=str(reader.tell()), octets=reader.tell() - start, skipped=skipped, is_done=False
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class MaildirSource:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = f"maildir:{folder.resolve()}"
        self.total = 0
        self._files: Iterator[maildir.File] | None = None
        self._position = ""

    def start(self, position: str | None) -> int:
        self._position = position or ""
        listed = list(maildir.files(self.folder))
        done = sum(_size(f.path) for f in listed if f.unique <= self._position)
        self.total = sum(_size(f.path) for f in listed)
        self._files = (f for f in listed if f.unique > self._position)
        return done

    def read_batch(self, blobs: Blobs, *, max_messages: int, max_octets: int) -> Batch:
        assert self._files is not None
        prepared: list[Prepared] = []
        skipped: list[Skipped] = []
        octets = 0
        for item in self._files:
            self._position = item.unique
            writer = blobs.create()
            try:
                with open(item.path, "rb") as handle:
                    while chunk := handle.read(1024 * 1024):
                        writer.write(chunk)
                date = maildir.internal_date(item.path)
            except OSError as exc:
                writer.abort()
                skipped.append(Skipped(source=str(self.folder), where=item.path.name, reason=exc.strerror or str(exc)))
                continue
            except BaseException:
                writer.abort()
                raise
            octets += writer.ref.size
            prepared.append(prepare(writer, blobs, flags=item.flags, internal_date=date))
            if len(prepared) >= max_messages or octets >= max_octets:
                return Batch(messages=prepared, position=self._position, octets=octets, skipped=skipped, is_done=False)
        return Batch(messages=prepared, position=self._position, octets=octets, skipped=skipped, is_done=True)

    def close(self) -> None:
        pass


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _joined(prefix: str | None, name: str) -> str:
    if not prefix:
        return name
    return prefix if name == INBOX else prefix + HIERARCHY_SEPARATOR + name


def mbox_tree(root: Path) -> tuple[list[tuple[str, Path]], list[Skipped]]:
    """Mailboxes of a directory of mbox files (mutt's ~/Mail, Thunderbird's ``X.sbd/`` children)."""
    found: list[tuple[str, Path]] = []
    skipped: list[Skipped] = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if name == STATE_FILE or name.endswith(".msf"):
                continue
            with open(path, "rb") as handle:
                head = handle.read(5)
            if head and head != b"From ":
                skipped.append(Skipped(source=str(path), where="whole file", reason="not an mbox file"))
                continue
            parts = [p.removesuffix(".sbd") for p in path.relative_to(root).parts]
            mailbox = INBOX if len(parts) == 1 and parts[0].upper() == INBOX else HIERARCHY_SEPARATOR.join(parts)
            found.append((mailbox, path))
    return found, skipped


class Importer:
    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        account: Account,
        *,
        progress: Progress | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_messages: int = _BATCH_MESSAGES,
        batch_octets: int = _BATCH_OCTETS,
    ) -> None:
        self.store = store
        self._blobs = blobs
        self.account = account
        self._progress = progress or NoProgress()
        self._now = now
        self._batch_messages = batch_messages
        self._batch_octets = batch_octets
        self._mailboxes: dict[str, int] = {}
        self.report = Report()

    async def mailbox_id(self, name: str, *, special_use: SpecialUse | None = None) -> int:
        """The account's mailbox `name` (or, given a special use, the one with that role), created if missing."""
        cached = self._mailboxes.get(name)
        if cached is not None:
            return cached
        account_id = self.account.id
        found = None
        if special_use is not None:
            found = next((m for m in await self.store.list_mailboxes(account_id) if m.special_use is special_use), None)
        if found is None:
            found = await self.store.get_mailbox(account_id, INBOX if name.upper() == INBOX else name)
        if found is None:
            found = await self.store.create_mailbox(account_id, name)
            self.report.created.append(name)
        self._mailboxes[name] = found.id
        return found.id

    async def import_path(self, path: Path, *, mailbox: str | None = None) -> Report:
        """Import an mbox file (into `mailbox`, INBOX by default), a Maildir++ tree or a directory of
        mbox files (their names under `mailbox` when given)."""
        if await asyncio.to_thread(path.is_file):
            await self.import_source(MboxSource(path, now=self._now), mailbox or INBOX)
        elif await asyncio.to_thread(path.is_dir):
            folders = await asyncio.to_thread(maildir.folders, path)
            if folders:
                for folder in folders:
                    await self.import_source(MaildirSource(folder.path), _joined(mailbox, folder.name))
            else:
                found, skipped = await asyncio.to_thread(mbox_tree, path)
                self.report.skipped += skipped
                if not found:
                    raise SourceError(f"{path}: neither a Maildir nor a directory of mbox files")
                for name, file in found:
                    await self.import_source(MboxSource(file, now=self._now), _joined(mailbox, name))
        else:
            raise SourceError(f"{path}: no such file or directory")
        return self.report

    async def import_source(self, source: Source, mailbox: str) -> None:
        account_id = self.account.id
        mailbox_id = await self.mailbox_id(mailbox)
        before = await self.store.import_progress(account_id, source.key, mailbox)
        done = await asyncio.to_thread(source.start, before.position if before else None)
        count = before.messages if before else 0
        self.report.already += count
        self._progress.add_total(source.total - done)
        pending: asyncio.Future[None] | None = None
        try:
            while True:
                batch = await asyncio.to_thread(
                    source.read_batch, self._blobs, max_messages=self._batch_messages, max_octets=self._batch_octets
                )
                if pending is not None:
                    try:
                        await pending
                    except BaseException:
                        for item in batch.messages:
                            item.writer.abort()
                        raise
                count += len(batch.messages)
                progress = ImportProgress(
                    account_id=account_id, source=source.key, mailbox=mailbox, position=batch.position, messages=count
                )
                pending = asyncio.ensure_future(self._commit(batch, mailbox_id, progress))
                if batch.is_done:
                    break
            await pending
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            source.close()

    async def _commit(self, batch: Batch, mailbox_id: int, progress: ImportProgress) -> None:
        messages = [
            NewMessage(
                account_id=self.account.id,
                mailbox_id=mailbox_id,
                blob_id=item.writer.ref.id,
                size=item.writer.ref.size,
                structure=item.structure,
                flags=item.flags,
                internal_date=item.internal_date,
            )
            for item in batch.messages
        ]
        writers = [item.writer for item in batch.messages]
        try:
            await self.store.append_imported(messages, blobs=writers, progress=progress)
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        self.report.messages += len(messages)
        self.report.octets += sum(m.size for m in messages)
        self.report.skipped += batch.skipped
        self._progress.advance(messages=len(messages), octets=batch.octets)

    async def commit_prepared(self, mailbox: str, items: list[Prepared], progress: ImportProgress) -> None:
        """Store messages read elsewhere (IMAP) with their source's progress, in one transaction."""
        mailbox_id = await self.mailbox_id(mailbox)
        octets = sum(item.writer.ref.size for item in items)
        await self._commit(
            Batch(messages=items, position=progress.position, octets=octets, skipped=[], is_done=False),
            mailbox_id,
            progress,
        )
