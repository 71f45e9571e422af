"""Export of an account's mailboxes to mbox (mboxrd) or Maildir++, streamed from the blob files.

Resumable: a Maildir message file is named after its mailbox's UIDVALIDITY and its UID, so a re-run
skips what is there. An mbox export keeps a small state file (``<file>.pochta-export.json``, or
``.pochta-export.json`` in an export directory) with, per mailbox, the last UID written and the file's
length after it, fsynced with the file every batch; a re-run cuts the file back to that length and goes
on. The state file goes away when the export is complete.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pochta.archive import maildir, mbox
from pochta.archive.importer import STATE_FILE, Progress
from pochta.store.api import HIERARCHY_SEPARATOR, INBOX, Account, Blobs, Mailbox, Message, Store, StoreError

_PAGE = 1000  # UIDs asked of the store at a time, so a huge mailbox is never listed whole
_SYNC_EVERY = 500  # messages between fsyncs of an mbox file and its state


class ExportError(StoreError):
    pass


@dataclass(slots=True)
class ExportReport:
    messages: int = 0
    octets: int = 0
    already: int = 0  # written by an earlier, interrupted run
    mailboxes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def mbox_file_name(mailbox: str) -> Path:
    """``a/b`` → ``a.sbd/b`` (Thunderbird's layout: a folder may hold messages and children)."""
    parts = [
        part if part.strip(".") else part.replace(".", "%2E") or "%" for part in mailbox.split(HIERARCHY_SEPARATOR)
    ]
    return Path(*[part + ".sbd" for part in parts[:-1]], parts[-1])  # "", "." and ".." never leave the directory


async def messages_after(store: Store, mailbox: Mailbox, after: int) -> list[Message]:
    """The next page of messages with a UID above `after` (empty at the end)."""
    start = after + 1
    while start < mailbox.uidnext:
        end = min(start + _PAGE, mailbox.uidnext)
        found = await store.messages(mailbox.id, uids=range(start, end))
        if found:
            return found
        start = end
    return []


class Exporter:
    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        account: Account,
        *,
        hostname: str,
        progress: Progress,
        fsync: bool = True,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._account = account
        self._hostname = hostname
        self._progress = progress
        self._fsync = fsync
        self.report = ExportReport()

    async def _mailboxes(self, only: str | None) -> list[Mailbox]:
        mailboxes = await self._store.list_mailboxes(self._account.id)
        if only is None:
            return mailboxes
        chosen = [m for m in mailboxes if m.name == (INBOX if only.upper() == INBOX else only)]
        if not chosen:
            raise ExportError(f"{self._account.address} has no mailbox {only}")
        return chosen

    async def export(self, path: Path, *, format: str, mailbox: str | None) -> ExportReport:
        mailboxes = await self._mailboxes(mailbox)
        self._progress.add_total(sum(m.size for m in mailboxes))
        if format == "maildir":
            for item in mailboxes:
                folder = path if mailbox is not None or item.name == INBOX else path / maildir.directory_name(item.name)
                await self._to_maildir(item, folder)
        elif mailbox is not None:
            await self._to_mbox_files([(mailboxes[0], path)], _state_path(path))
        else:
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
            await self._to_mbox_files([(m, path / mbox_file_name(m.name)) for m in mailboxes], path / STATE_FILE)
        return self.report

    async def _to_maildir(self, mailbox: Mailbox, folder: Path) -> None:
        writer = await asyncio.to_thread(maildir.Writer, folder, fsync=self._fsync)
        self.report.mailboxes.append(mailbox.name)
        after = 0
        while page := await messages_after(self._store, mailbox, after):
            after = page[-1].uid

            def write_page(page: list[Message] = page) -> tuple[int, int, int]:
                sizes = writer.write_many(
                    [
                        (
                            _unique(m, mailbox.uidvalidity, self._hostname),
                            functools.partial(self._blobs.open, m.blob_id),
                            m.flags,
                            m.internal_date,
                        )
                        for m in page
                    ]
                )
                done = [size for size in sizes if size is not None]
                return len(done), len(sizes) - len(done), sum(done)

            written, skipped, octets = await asyncio.to_thread(write_page)
            self.report.messages += written
            self.report.already += skipped
            self.report.octets += octets
            self._progress.advance(messages=len(page), octets=sum(m.size for m in page))
        if writer.dropped_keywords:
            self.report.warnings.append(
                f"{mailbox.name}: Maildir holds 26 keywords; not written: {', '.join(sorted(writer.dropped_keywords))}"
            )

    async def _to_mbox_files(self, targets: list[tuple[Mailbox, Path]], state_path: Path) -> None:
        state = await asyncio.to_thread(_load_state, state_path)
        for mailbox, file in targets:
            key = f"{mailbox.name}\t{mailbox.uidvalidity}"
            await asyncio.to_thread(_check_target, file, is_resumed=key in state)
            self.report.mailboxes.append(mailbox.name)
            await self._to_mbox(mailbox, file, state, key, state_path)
        await asyncio.to_thread(state_path.unlink, missing_ok=True)

    async def _to_mbox(
        self, mailbox: Mailbox, file: Path, state: dict[str, list[int]], key: str, state_path: Path
    ) -> None:
        last_uid, length = state.get(key, [0, 0])
        handle = await asyncio.to_thread(_open_at, file, length)
        try:
            if last_uid:
                before = await self._store.messages(mailbox.id, uids=range(1, last_uid + 1))
                self.report.already += len(before)
                self._progress.advance(messages=len(before), octets=sum(m.size for m in before))
            since_sync = 0
            while page := await messages_after(self._store, mailbox, last_uid):
                octets = await asyncio.to_thread(self._write_mbox_page, handle, page)
                last_uid = page[-1].uid
                self.report.messages += len(page)
                self.report.octets += octets
                self._progress.advance(messages=len(page), octets=sum(m.size for m in page))
                since_sync += len(page)
                if since_sync >= _SYNC_EVERY:
                    await asyncio.to_thread(self._sync, handle, state, key, last_uid, state_path)
                    since_sync = 0
            await asyncio.to_thread(self._sync, handle, state, key, last_uid, state_path)
        finally:
            handle.close()

    def _write_mbox_page(self, out: BinaryIO, page: list[Message]) -> int:
        written = 0
        for message in page:
            with self._blobs.open(message.blob_id) as blob:
                written += mbox.write_message(out, blob, flags=message.flags, internal_date=message.internal_date)
        return written

    def _sync(self, handle: BinaryIO, state: dict[str, list[int]], key: str, last_uid: int, path: Path) -> None:
        handle.flush()
        if self._fsync:
            os.fsync(handle.fileno())
        state[key] = [last_uid, handle.tell()]
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(json.dumps(state))
        if self._fsync:
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        os.replace(tmp, path)


def _unique(message: Message, uidvalidity: int, hostname: str) -> str:
    """A Maildir unique name that the same message gets again on a re-run."""
    return f"{int(message.internal_date.timestamp())}.M{message.uid}V{uidvalidity}.{hostname}"


def _check_target(file: Path, *, is_resumed: bool) -> None:
    if not is_resumed and file.exists() and file.stat().st_size:
        raise ExportError(f"{file} exists; remove it or export somewhere else")
    file.parent.mkdir(parents=True, exist_ok=True)


def _open_at(file: Path, length: int) -> BinaryIO:
    """The mbox file opened for writing at `length` (where the last complete run stopped)."""
    handle = open(file, "r+b" if file.exists() else "w+b")  # noqa: SIM115 - the caller closes it
    handle.truncate(length)
    handle.seek(length)
    return handle


def _state_path(file: Path) -> Path:
    return file.with_name(file.name + STATE_FILE)


def _load_state(path: Path) -> dict[str, list[int]]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ExportError(f"{path}: not an export state file ({exc}); remove it to start over") from exc
    if not isinstance(value, dict):
        raise ExportError(f"{path}: not an export state file; remove it to start over")
    return {str(k): [int(v[0]), int(v[1])] for k, v in value.items()}
