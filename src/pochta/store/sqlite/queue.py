"""The outbound queue in SQLite: entries per destination domain, claimed with a lease."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pochta.mail.envelope import Envelope
from pochta.store.api import (
    Attempt,
    BlobWriter,
    NewMessage,
    NotFound,
    QueueEntry,
    QueueItem,
    QueueRecipient,
    RecipientState,
)
from pochta.store.sqlite.engine import QUICK_ROWS, Engine, WriteResult
from pochta.store.sqlite.mailboxes import append_rows

_COLUMNS = (
    "id, blob_id, size, envelope, domain, account_id, created, next_attempt, attempts, held, lease_owner,"
    " lease_until, delay_notified, last_error"
)


def _time(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def _entries(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[QueueEntry]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM queue {where}", params).fetchall()
    entries = []
    for row in rows:
        recipients = tuple(
            QueueRecipient(address=r[0], notify=tuple(r[1].split()), orcpt=r[2], state=RecipientState(r[3]), reply=r[4])
            for r in conn.execute(
                "SELECT address, notify, orcpt, state, reply FROM queue_recipients WHERE queue_id = ? ORDER BY address",
                (row[0],),
            )
        )
        entries.append(
            QueueEntry(
                id=row[0],
                blob_id=row[1],
                size=row[2],
                envelope=bytes(row[3]),
                domain=row[4],
                account_id=row[5],
                created=_time(row[6]),
                next_attempt=_time(row[7]),
                attempts=row[8],
                is_held=bool(row[9]),
                lease_owner=row[10],
                lease_until=_time(row[11]),
                is_delay_notified=bool(row[12]),
                last_error=row[13],
                recipients=recipients,
            )
        )
    return entries


class SqliteQueue:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def enqueue(
        self,
        items: Sequence[QueueItem],
        *,
        now: datetime,
        local: Sequence[NewMessage] = (),
        blobs: Sequence[BlobWriter] = (),
    ) -> list[int]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[int]]:
            _, touched = append_rows(conn, local)
            ids = []
            for item in items:
                cursor = conn.execute(
                    "INSERT INTO queue (blob_id, size, envelope, domain, account_id, created, next_attempt)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (
                        item.blob_id,
                        item.size,
                        item.envelope,
                        item.domain,
                        item.account_id,
                        _seconds(now),
                        _seconds(now),
                    ),
                )
                queue_id = int(cursor.lastrowid or 0)
                conn.executemany(
                    "INSERT OR IGNORE INTO queue_recipients (queue_id, address, notify, orcpt) VALUES (?,?,?,?)",
                    [
                        (queue_id, r.address, " ".join(r.notify), r.orcpt)
                        for r in Envelope.loads(item.envelope).recipients
                    ],
                )
                ids.append(queue_id)
            return WriteResult(ids, touched=touched)

        return await self._db.write(run, blobs=blobs, is_quick=len(items) + len(local) <= QUICK_ROWS)

    async def queue_entries(self) -> list[QueueEntry]:
        return await self._db.read(lambda conn: _entries(conn, "ORDER BY next_attempt, id", ()))

    async def queue_entry(self, queue_id: int) -> QueueEntry | None:
        found = await self._db.read(lambda conn: _entries(conn, "WHERE id = ?", (queue_id,)))
        return found[0] if found else None

    async def claim(self, *, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[QueueEntry]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[QueueEntry]]:
            at = _seconds(now)
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM queue WHERE held = 0 AND next_attempt <= ? AND lease_until <= ?"
                    " ORDER BY next_attempt, id LIMIT ?",
                    (at, at, limit),
                )
            ]
            conn.executemany(
                "UPDATE queue SET lease_owner = ?, lease_until = ? WHERE id = ?",
                [(owner, at + int(lease_seconds), queue_id) for queue_id in ids],
            )
            marks = ",".join("?" * len(ids))
            return WriteResult(_entries(conn, f"WHERE id IN ({marks}) ORDER BY next_attempt, id", ids) if ids else [])

        return await self._db.write(run)

    async def finish_attempt(self, queue_id: int, *, owner: str, now: datetime, attempt: Attempt) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            row = conn.execute("SELECT lease_owner FROM queue WHERE id = ?", (queue_id,)).fetchone()
            if row is None:
                raise NotFound(f"no queue entry {queue_id}")
            conn.executemany(
                "UPDATE queue_recipients SET state = ?, reply = ? WHERE queue_id = ? AND address = ?",
                [(state.value, reply, queue_id, address) for address, (state, reply) in attempt.results.items()],
            )
            (pending,) = conn.execute(
                "SELECT count(*) FROM queue_recipients WHERE queue_id = ? AND state = 'pending'", (queue_id,)
            ).fetchone()
            if not pending or attempt.next_attempt is None:
                conn.execute("DELETE FROM queue WHERE id = ?", (queue_id,))
                return WriteResult(None)
            conn.execute(
                "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, lease_owner = NULL, lease_until = 0,"
                " last_error = ?, delay_notified = max(delay_notified, ?) WHERE id = ?",
                (_seconds(attempt.next_attempt), attempt.error, int(attempt.is_delay_notified), queue_id),
            )
            return WriteResult(None)

        await self._db.write(run)

    async def set_held(self, queue_id: int, *, is_held: bool) -> None:
        await self._update(queue_id, "UPDATE queue SET held = ? WHERE id = ?", (int(is_held), queue_id))

    async def retry_now(self, queue_id: int, *, now: datetime) -> None:
        await self._update(
            queue_id, "UPDATE queue SET next_attempt = ?, held = 0 WHERE id = ?", (_seconds(now), queue_id)
        )

    async def delete_queue_entry(self, queue_id: int) -> None:
        await self._update(queue_id, "DELETE FROM queue WHERE id = ?", (queue_id,))

    async def _update(self, queue_id: int, sql: str, params: Sequence[Any]) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if conn.execute(sql, params).rowcount == 0:
                raise NotFound(f"no queue entry {queue_id}")
            return WriteResult(None)

        await self._db.write(run)
