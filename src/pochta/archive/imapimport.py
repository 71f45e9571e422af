"""Migrating a whole account from another IMAP server (`pochta import-imap`), with Python's imaplib.

Every selectable folder (LIST "" "*") is examined read-only and fetched in UID order in batches
(UID FLAGS INTERNALDATE BODY.PEEK[], so the remote's \\Seen flags are left alone). Each batch is stored in
one transaction with the folder's UIDVALIDITY and last UID, so a re-run fetches only what is new. A
folder with a special-use attribute (RFC 6154) lands in the account's mailbox with that role, so the
remote's "Sent Items" becomes our Sent. imaplib holds each fetched message in memory while it is stored;
batches are bounded in octets so only a few are held at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pochta.archive.flags import clean_flags
from pochta.archive.importer import Importer, Prepared, Progress, Skipped, prepare
from pochta.proto.imap.utf7 import Utf7Error, decode_mailbox
from pochta.store.api import HIERARCHY_SEPARATOR, INBOX, Blobs, ImportProgress, SpecialUse, StoreError

_BATCH_MESSAGES = 100
_BATCH_OCTETS = 16 * 1024 * 1024
_LIST = re.compile(rb'\((?P<attributes>[^)]*)\) (?P<separator>"(?:\\.|[^"])*"|NIL) (?P<name>.*)$', re.I)
_FETCH_UID = re.compile(rb"UID (\d+)", re.I)
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)", re.I)
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)", re.I)
_FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]+)"', re.I)
_SPECIAL = {use.value.lower(): use for use in SpecialUse}


class RemoteError(StoreError):
    """The remote server refused or answered what we cannot use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    host: str
    port: int
    user: str
    password: str
    security: str  # "tls" (implicit, 993), "starttls" or "none"
    ca_file: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteFolder:
    remote_name: str  # as the remote spells it (modified UTF-7), for EXAMINE
    name: str  # our name, "/" separated
    special_use: SpecialUse | None


def _unquote(token: bytes) -> bytes:
    if token.startswith(b'"') and token.endswith(b'"') and len(token) >= 2:
        return re.sub(rb"\\(.)", rb"\1", token[1:-1])
    return token


def parse_list(lines: Sequence[object]) -> list[RemoteFolder]:
    """Selectable folders from imaplib's LIST answer (a name sent as a literal comes as a tuple)."""
    folders = []
    for item in lines:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], bytes) and isinstance(item[1], bytes):
            head, name = item[0].rsplit(b"{", 1)[0].rstrip() + b" ", item[1]
            match = _LIST.match(head + b'""')
            raw = name
        elif isinstance(item, bytes):
            match = _LIST.match(item)
            raw = _unquote(match.group("name")) if match else b""
        else:
            continue
        if match is None:
            continue
        attributes = match.group("attributes").decode("latin-1").lower().split()
        if "\\noselect" in attributes or "\\nonexistent" in attributes:
            continue
        separator = _unquote(match.group("separator")).decode("latin-1")
        remote_name = raw.decode("utf-8", errors="replace")
        try:
            decoded = decode_mailbox(remote_name)
        except Utf7Error:
            decoded = remote_name  # a server that sends UTF-8 names (RFC 9051) or is lax
        parts = decoded.split(separator) if separator and separator != "NIL" else [decoded]
        ours = INBOX if decoded.upper() == INBOX else HIERARCHY_SEPARATOR.join(parts)
        special = next((_SPECIAL[a] for a in attributes if a in _SPECIAL), None)
        folders.append(RemoteFolder(remote_name=remote_name, name=ours, special_use=special))
    return folders


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _internal_date(text: bytes) -> datetime | None:
    try:
        return datetime.strptime(text.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None


def _check(result: tuple[str, Sequence[object]], what: str) -> Sequence[object]:
    status, data = result
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise RemoteError(f"{what}: {detail or status}")
    return data


class ImapImport:
    def __init__(self, importer: Importer, blobs: Blobs, remote: Remote, *, progress: Progress) -> None:
        self._importer = importer
        self._blobs = blobs
        self._remote = remote
        self._progress = progress
        self._imap: imaplib.IMAP4 | None = None

    def _connect(self) -> imaplib.IMAP4:
        remote = self._remote
        context = ssl.create_default_context(cafile=remote.ca_file)
        if not remote.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if remote.security == "tls":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(remote.host, remote.port, ssl_context=context, timeout=60)
            else:
                imap = imaplib.IMAP4(remote.host, remote.port, timeout=60)
                if remote.security == "starttls":
                    imap.starttls(ssl_context=context)
            imap.login(remote.user, remote.password)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise RemoteError(f"{remote.host}:{remote.port}: {exc}") from exc
        return imap

    async def run(self) -> None:
        self._imap = await asyncio.to_thread(self._connect)
        try:
            data = await asyncio.to_thread(lambda: _check(self._imap_().list('""', "*"), "LIST"))
            folders = parse_list(data)
            for folder in folders:
                await self._folder(folder)
        finally:
            imap = self._imap
            self._imap = None
            await asyncio.to_thread(_logout, imap)

    def _imap_(self) -> imaplib.IMAP4:
        assert self._imap is not None
        return self._imap

    def _source(self, folder: RemoteFolder) -> str:
        remote = self._remote
        return f"imap://{remote.user}@{remote.host}/{folder.remote_name}"  # not the port: 143 and 993 are one server

    async def _folder(self, folder: RemoteFolder) -> None:
        importer = self._importer
        account_id = importer.account.id
        target = folder.name
        if folder.special_use is not None:
            await importer.mailbox_id(target, special_use=folder.special_use)
        source = self._source(folder)
        imap = self._imap_()
        try:
            await asyncio.to_thread(lambda: _check(imap.select(_quote(folder.remote_name), readonly=True), "EXAMINE"))
        except RemoteError as exc:
            importer.report.skipped.append(Skipped(source=source, where="folder", reason=str(exc)))
            return
        uidvalidity = int((imap.response("UIDVALIDITY")[1] or [b"0"])[0] or b"0")
        before = await importer.store.import_progress(account_id, source, target)
        last = 0
        count = 0
        if before is not None:
            known, _, uid = before.position.partition(":")
            if int(known) != uidvalidity:
                importer.report.skipped.append(
                    Skipped(
                        source=source,
                        where="folder",
                        reason="UIDVALIDITY changed since the last run; use --restart to import it again",
                    )
                )
                return
            last, count = int(uid), before.messages
            importer.report.already += count
        listed = await asyncio.to_thread(self._sizes, last)
        self._progress.add_total(sum(size for _, size in listed))
        batch: list[tuple[int, int]] = []
        for uid_size in listed:
            batch.append(uid_size)
            if len(batch) >= _BATCH_MESSAGES or sum(s for _, s in batch) >= _BATCH_OCTETS:
                count = await self._batch(folder, source, uidvalidity, batch, count)
                batch = []
        if batch or before is None:
            await self._batch(folder, source, uidvalidity, batch, count)

    def _sizes(self, after: int) -> list[tuple[int, int]]:
        imap = self._imap_()
        data = _check(imap.uid("FETCH", f"{after + 1}:*", "(UID RFC822.SIZE)"), "UID FETCH")
        found = []
        for item in data:
            if not isinstance(item, bytes):
                continue
            uid, size = _FETCH_UID.search(item), _FETCH_SIZE.search(item)
            if uid and int(uid.group(1)) > after:  # n:* always includes the highest UID (RFC 9051 §6.4.8)
                found.append((int(uid.group(1)), int(size.group(1)) if size else 0))
        return sorted(found)

    def _fetch(self, uids: list[int]) -> tuple[list[Prepared], list[Skipped]]:
        imap = self._imap_()
        data = _check(imap.uid("FETCH", ",".join(map(str, uids)), "(UID FLAGS INTERNALDATE BODY.PEEK[])"), "UID FETCH")
        prepared: list[Prepared] = []
        skipped: list[Skipped] = []
        seen: set[int] = set()
        for index, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            head = item[0]
            after = data[index + 1] if index + 1 < len(data) and isinstance(data[index + 1], bytes) else b""
            meta = head + b" " + after
            uid = _FETCH_UID.search(meta)
            if uid is None or b"BODY[]" not in head.upper():
                continue
            flags_match = _FETCH_FLAGS.search(meta)
            date_match = _FETCH_DATE.search(meta)
            flags = clean_flags(set(flags_match.group(1).decode("utf-8", "replace").split()) if flags_match else set())
            date = (_internal_date(date_match.group(1)) if date_match else None) or datetime.now(UTC)
            writer = self._blobs.create()
            writer.write(item[1])
            prepared.append(prepare(writer, self._blobs, flags=flags, internal_date=date))
            seen.add(int(uid.group(1)))
        for uid_value in uids:
            if uid_value not in seen:
                skipped.append(
                    Skipped(
                        source=imap.host,
                        where=f"UID {uid_value}",
                        reason="the server sent no content for it (expunged meanwhile?)",
                    )
                )
        return prepared, skipped

    async def _batch(
        self, folder: RemoteFolder, source: str, uidvalidity: int, batch: list[tuple[int, int]], count: int
    ) -> int:
        uids = [uid for uid, _ in batch]
        prepared, skipped = await asyncio.to_thread(self._fetch, uids) if uids else ([], [])
        for item in skipped:
            self._importer.report.skipped.append(Skipped(source=source, where=item.where, reason=item.reason))
        last = max(uids) if uids else 0
        if not uids:
            previous = await self._importer.store.import_progress(self._importer.account.id, source, folder.name)
            last = int(previous.position.partition(":")[2]) if previous else 0
        count += len(prepared)
        progress = ImportProgress(
            account_id=self._importer.account.id,
            source=source,
            mailbox=folder.name,
            position=f"{uidvalidity}:{last}",
            messages=count,
        )
        await self._importer.commit_prepared(folder.name, prepared, progress)
        return count


def _logout(imap: imaplib.IMAP4 | None) -> None:
    if imap is None:
        return
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        imap.logout()
