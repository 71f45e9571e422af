"""Import progress, online backups and self-checks of the SQLite store (consumers: archive/)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from pochta.store.api import Appended, BlobUse, BlobWriter, ImportProgress, NewMessage
from pochta.store.sqlite.engine import Engine, WriteResult
from pochta.store.sqlite.mailboxes import append_rows

_SEEN = "\\Seen"


def blob_uses(conn: sqlite3.Connection) -> list[BlobUse]:
    """Every row of every table with a ``blob_id`` column: the tables of other features (queue, and
    whatever keeps blobs later) are found by their columns, so a backup never misses their blobs."""
    uses: list[BlobUse] = []
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for table in tables:
        columns = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
        if "blob_id" not in columns:
            continue
        if table == "messages":
            rows = conn.execute(
                "SELECT x.blob_id, x.size, a.address || ' ' || m.name || ' uid ' || x.uid FROM messages x"
                " JOIN mailboxes m ON m.id = x.mailbox_id JOIN accounts a ON a.id = m.account_id"
            )
        else:
            size = "size" if "size" in columns else "NULL"
            key = f"'{table} ' || id" if "id" in columns else f"'{table}'"
            rows = conn.execute(f'SELECT blob_id, {size}, {key} FROM "{table}"')
        uses.extend(BlobUse(blob_id=row[0], size=row[1], where=row[2]) for row in rows)
    return uses


def _check(conn: sqlite3.Connection) -> list[str]:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
    problems += [
        f"foreign key: {row[0]} row {row[1]} refers to a missing {row[2]}"
        for row in conn.execute("PRAGMA foreign_key_check")
    ]
    rows = conn.execute(
        "SELECT a.address, m.name, m.messages, m.unseen, m.size, count(x.id), coalesce(sum(x.size), 0),"
        " coalesce(sum(instr(' ' || x.flags || ' ', ' \\Seen ') = 0), 0)"
        " FROM mailboxes m JOIN accounts a ON a.id = m.account_id LEFT JOIN messages x ON x.mailbox_id = m.id"
        " GROUP BY m.id ORDER BY a.address, m.name"
    )
    for address, name, messages, unseen, size, counted, counted_size, counted_unseen in rows:
        if (messages, unseen, size) != (counted, counted_unseen, counted_size):
            problems.append(
                f"{address} {name}: counters say {messages} messages, {unseen} unseen, {size} octets;"
                f" the rows say {counted}, {counted_unseen}, {counted_size}"
            )
    rows = conn.execute(
        "SELECT a.address, a.used_bytes, coalesce(sum(m.size), 0) FROM accounts a"
        " LEFT JOIN mailboxes m ON m.account_id = a.id GROUP BY a.id ORDER BY a.address"
    )
    for address, used, counted in rows:
        if used != counted:
            problems.append(f"{address}: quota use says {used} octets, its mailboxes hold {counted}")
    return problems


def backup_database(source: Path, target: Path) -> list[BlobUse]:
    """SQLite's online backup API: one read transaction over the source, so the copy is one consistent
    snapshot while writers go on (WAL). The copy is a single file (rollback journal), renamed into place
    only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, isolation_level=None, timeout=30.0)
    dst = sqlite3.connect(partial, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # all pages in one step: one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        uses = blob_uses(dst)
    finally:
        dst.close()
        src.close()
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return uses


class SqliteArchive:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def import_progress(self, account_id: int, source: str, mailbox: str) -> ImportProgress | None:
        def run(conn: sqlite3.Connection) -> ImportProgress | None:
            row = conn.execute(
                "SELECT position, messages FROM import_progress WHERE account_id = ? AND source = ? AND mailbox = ?",
                (account_id, source, mailbox),
            ).fetchone()
            if row is None:
                return None
            return ImportProgress(
                account_id=account_id, source=source, mailbox=mailbox, position=row[0], messages=row[1]
            )

        return await self._db.read(run)

    async def append_imported(
        self, messages: Sequence[NewMessage], *, blobs: Sequence[BlobWriter] = (), progress: ImportProgress
    ) -> list[Appended]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[Appended]]:
            results, touched = append_rows(conn, messages) if messages else ([], set())
            conn.execute(
                "INSERT OR REPLACE INTO import_progress (account_id, source, mailbox, position, messages, updated)"
                " VALUES (?,?,?,?,?,?)",
                (
                    progress.account_id,
                    progress.source,
                    progress.mailbox,
                    progress.position,
                    progress.messages,
                    int(time.time()),
                ),
            )
            return WriteResult(results, touched=touched)

        return await self._db.write(run, blobs=blobs)

    async def forget_import(self, account_id: int, source: str | None = None) -> int:
        def run(conn: sqlite3.Connection) -> WriteResult[int]:
            if source is None:
                cursor = conn.execute("DELETE FROM import_progress WHERE account_id = ?", (account_id,))
            else:
                cursor = conn.execute(
                    "DELETE FROM import_progress WHERE account_id = ? AND source = ?", (account_id, source)
                )
            return WriteResult(cursor.rowcount)

        return await self._db.write(run)

    async def backup(self, data_dir: str) -> list[BlobUse]:
        return await asyncio.to_thread(backup_database, self._db.path, Path(data_dir) / self._db.path.name)

    async def blob_uses(self) -> list[BlobUse]:
        return await self._db.read(blob_uses)

    async def check_database(self) -> list[str]:
        return await self._db.read(_check)
