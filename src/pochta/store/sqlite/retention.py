"""Retention policies, the undelete bin, the journal's index and quota warnings in SQLite (schema 0007)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pochta.store.api import (
    Account,
    Appended,
    DeletedMessage,
    JournalQuery,
    JournalRecord,
    Message,
    NewJournalRecord,
    NewMessage,
    NotFound,
    RetentionAction,
    RetentionPolicy,
)
from pochta.store.sqlite.directory import _ACCOUNT_COLUMNS, _account
from pochta.store.sqlite.engine import Engine, WriteResult
from pochta.store.sqlite.mailboxes import _MESSAGE_COLUMNS, _message, append_rows, insert_mailbox


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _policy(row: tuple[Any, ...]) -> RetentionPolicy:
    return RetentionPolicy(
        target=row[0], mailbox=row[1], action=RetentionAction(row[2]), days=row[3], is_per_year=bool(row[4])
    )


def _deleted(row: tuple[Any, ...]) -> DeletedMessage:
    return DeletedMessage(
        id=row[0],
        account_id=row[1],
        mailbox=row[2],
        flags=frozenset(row[3].split()) if row[3] else frozenset(),
        internal_date=_time(row[4]),
        expunged=_time(row[5]),
        size=row[6],
        blob_id=row[7],
    )


_DELETED_COLUMNS = "id, account_id, mailbox, flags, internal_date, expunged, size, blob_id"
_JOURNAL_COLUMNS = "id, domain, segment, offset, length, received, direction, sender, size"


def _mailbox_for_restore(conn: sqlite3.Connection, account_id: int, name: str) -> int:
    row = conn.execute("SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)).fetchone()
    if row is not None:
        return int(row[0])
    # made again, with its parents: the user may have deleted the mailbox the message was expunged from
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if not conn.execute(
            "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, parent)
        ).fetchone():
            insert_mailbox(conn, account_id, parent, special_use=None, subscribe=True)
    return insert_mailbox(conn, account_id, name, special_use=None, subscribe=True)


class SqliteRetention:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    # ---- retention policies ----

    async def set_retention_policy(self, policy: RetentionPolicy) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            conn.execute(
                "INSERT OR REPLACE INTO retention_policies (target, mailbox, action, days, per_year)"
                " VALUES (?,?,?,?,?)",
                (policy.target, policy.mailbox, policy.action.value, policy.days, int(policy.is_per_year)),
            )
            return WriteResult(None)

        await self._db.write(run)

    async def remove_retention_policy(self, target: str, mailbox: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            cursor = conn.execute("DELETE FROM retention_policies WHERE target = ? AND mailbox = ?", (target, mailbox))
            if cursor.rowcount == 0:
                raise NotFound(f"no retention policy for {target} mailbox {mailbox}")
            return WriteResult(None)

        await self._db.write(run)

    async def retention_policies(self) -> list[RetentionPolicy]:
        def run(conn: sqlite3.Connection) -> list[RetentionPolicy]:
            rows = conn.execute(
                "SELECT target, mailbox, action, days, per_year FROM retention_policies ORDER BY target, mailbox"
            ).fetchall()
            return [_policy(row) for row in rows]

        return await self._db.read(run)

    async def retention_due(
        self, mailbox_id: int, *, before: datetime, by_save_date: bool, limit: int
    ) -> list[Message]:
        column = "save_date" if by_save_date else "internal_date"

        def run(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND {column} < ? ORDER BY uid LIMIT ?",
                (mailbox_id, _seconds(before), limit),
            ).fetchall()
            return [_message(row) for row in rows]

        return await self._db.read(run)

    # ---- the undelete bin ----

    async def deleted_messages(
        self, account_id: int, *, since: datetime | None = None, mailbox: str | None = None
    ) -> list[DeletedMessage]:
        def run(conn: sqlite3.Connection) -> list[DeletedMessage]:
            sql = f"SELECT {_DELETED_COLUMNS} FROM deleted_messages WHERE account_id = ? AND expunged >= ?"
            params: list[Any] = [account_id, _seconds(since) if since else 0]
            if mailbox is not None:
                sql += " AND mailbox = ?"
                params.append(mailbox)
            rows = conn.execute(sql + " ORDER BY expunged, id", params).fetchall()
            return [_deleted(row) for row in rows]

        return await self._db.read(run)

    async def restore_deleted(self, account_id: int, ids: Sequence[int]) -> list[tuple[str, int]]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[tuple[str, int]]]:
            restored: list[tuple[str, int]] = []
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                rows = conn.execute(
                    "SELECT id, mailbox, flags, internal_date, size, blob_id, structure, envelope"
                    f" FROM deleted_messages WHERE account_id = ? AND id IN ({','.join('?' * len(chunk))})"
                    " ORDER BY id",
                    (account_id, *chunk),
                ).fetchall()
                messages = []
                names = []
                for row in rows:
                    flags = frozenset(row[2].split()) - {"\\Deleted"}  # it was expunged because of this flag
                    names.append(row[1])
                    messages.append(
                        NewMessage(
                            account_id=account_id,
                            mailbox_id=_mailbox_for_restore(conn, account_id, row[1]),
                            blob_id=row[5],
                            size=row[4],
                            structure=bytes(row[6]),
                            flags=flags,
                            internal_date=_time(row[3]),
                            envelope=bytes(row[7]) if row[7] is not None else None,
                        )
                    )
                appended, _ = append_rows(conn, messages)  # OverQuota undoes the whole restore
                conn.executemany("DELETE FROM deleted_messages WHERE id = ?", [(row[0],) for row in rows])
                restored += [(name, item.uid) for name, item in zip(names, appended, strict=True)]
            return WriteResult(restored, touched={account_id} if restored else set())

        return await self._db.write(run)

    async def purge_deleted(self, *, before: datetime, limit: int) -> int:
        def run(conn: sqlite3.Connection) -> WriteResult[int]:
            cursor = conn.execute(
                "DELETE FROM deleted_messages WHERE id IN"
                " (SELECT id FROM deleted_messages WHERE expunged < ? ORDER BY expunged LIMIT ?)",
                (_seconds(before), limit),
            )
            return WriteResult(cursor.rowcount)

        return await self._db.write(run)

    # ---- the journal's index ----

    async def set_journal_domain(self, domain: str, *, retention_days: int) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            conn.execute(
                "INSERT OR REPLACE INTO journal_domains (domain, retention_days) VALUES (?, ?)",
                (domain, retention_days),
            )
            return WriteResult(None)

        await self._db.write(run)

    async def remove_journal_domain(self, domain: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if conn.execute("DELETE FROM journal_domains WHERE domain = ?", (domain,)).rowcount == 0:
                raise NotFound(f"journal is not enabled for {domain}")
            return WriteResult(None)

        await self._db.write(run)

    async def journal_domains(self) -> dict[str, int]:
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT domain, retention_days FROM journal_domains ORDER BY domain").fetchall()
            return {row[0]: int(row[1]) for row in rows}

        return await self._db.read(run)

    async def add_journal_records(self, records: Sequence[NewJournalRecord]) -> list[int]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[int]]:
            ids: list[int] = []
            for record in records:
                cursor = conn.execute(
                    "INSERT INTO journal (domain, segment, offset, length, received, direction, sender, size)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (
                        record.domain,
                        record.segment,
                        record.offset,
                        record.length,
                        _seconds(record.received),
                        "out" if record.is_outgoing else "in",
                        record.sender,
                        record.size,
                    ),
                )
                journal_id = int(cursor.lastrowid or 0)
                conn.executemany(
                    "INSERT OR IGNORE INTO journal_recipients (journal_id, address) VALUES (?, ?)",
                    [(journal_id, address) for address in record.recipients],
                )
                ids.append(journal_id)
            return WriteResult(ids)

        return await self._db.write(run)

    async def search_journal(self, query: JournalQuery) -> list[JournalRecord]:
        def run(conn: sqlite3.Connection) -> list[JournalRecord]:
            sql = (
                f"SELECT {_JOURNAL_COLUMNS}, (SELECT group_concat(address, char(10)) FROM"
                " (SELECT address FROM journal_recipients r WHERE r.journal_id = j.id ORDER BY address))"
                " FROM journal j WHERE 1"
            )
            params: list[Any] = []
            if query.sender is not None:
                sql += " AND sender = ?"
                params.append(query.sender)
            if query.recipient is not None:
                sql += " AND EXISTS (SELECT 1 FROM journal_recipients r WHERE r.journal_id = j.id AND r.address = ?)"
                params.append(query.recipient)
            if query.since is not None:
                sql += " AND received >= ?"
                params.append(_seconds(query.since))
            if query.until is not None:
                sql += " AND received < ?"
                params.append(_seconds(query.until))
            if query.domain is not None:
                sql += " AND domain = ?"
                params.append(query.domain)
            rows = conn.execute(sql + " ORDER BY received, id", params).fetchall()
            return [
                JournalRecord(
                    id=row[0],
                    domain=row[1],
                    segment=row[2],
                    offset=row[3],
                    length=row[4],
                    received=_time(row[5]),
                    is_outgoing=row[6] == "out",
                    sender=row[7],
                    size=row[8],
                    recipients=tuple(sorted(row[9].split("\n"))) if row[9] else (),
                )
                for row in rows
            ]

        return await self._db.read(run)

    async def drop_journal_segment(self, domain: str, segment: str) -> int:
        def run(conn: sqlite3.Connection) -> WriteResult[int]:
            cursor = conn.execute("DELETE FROM journal WHERE domain = ? AND segment = ?", (domain, segment))
            return WriteResult(cursor.rowcount)

        return await self._db.write(run)

    # ---- quota warnings ----

    async def quota_warnings_due(self, *, ratio: float) -> list[Account]:
        def run(conn: sqlite3.Connection) -> list[Account]:
            rows = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.quota_bytes > 0"
                " AND a.used_bytes >= a.quota_bytes * ?"
                " AND NOT EXISTS (SELECT 1 FROM quota_warnings w WHERE w.account_id = a.id) ORDER BY a.id",
                (ratio,),
            ).fetchall()
            return [_account(row) for row in rows]

        return await self._db.read(run)

    async def add_quota_warning(self, message: NewMessage, *, ratio: float, now: datetime) -> Appended | None:
        def run(conn: sqlite3.Connection) -> WriteResult[Appended | None]:
            account_id = message.account_id
            row = conn.execute(
                "SELECT 1 FROM accounts a WHERE a.id = ? AND a.quota_bytes > 0 AND a.used_bytes >= a.quota_bytes * ?"
                " AND NOT EXISTS (SELECT 1 FROM quota_warnings w WHERE w.account_id = a.id)",
                (account_id, ratio),
            ).fetchone()
            if row is None:
                return WriteResult(None)
            conn.execute("INSERT INTO quota_warnings (account_id, warned) VALUES (?, ?)", (account_id, _seconds(now)))
            # The warning itself must arrive even at 99 %: lift the quota for this one small message.
            quota = conn.execute("SELECT quota_bytes FROM accounts WHERE id = ?", (account_id,)).fetchone()[0]
            conn.execute("UPDATE accounts SET quota_bytes = 0 WHERE id = ?", (account_id,))
            try:
                (appended,), _ = append_rows(conn, [message])
            finally:
                conn.execute("UPDATE accounts SET quota_bytes = ? WHERE id = ?", (quota, account_id))
            return WriteResult(appended, touched={account_id})

        return await self._db.write(run)

    async def clear_quota_warnings(self, *, ratio: float) -> int:
        def run(conn: sqlite3.Connection) -> WriteResult[int]:
            cursor = conn.execute(
                "DELETE FROM quota_warnings WHERE account_id IN"
                " (SELECT id FROM accounts WHERE quota_bytes = 0 OR used_bytes < quota_bytes * ?)",
                (ratio,),
            )
            return WriteResult(cursor.rowcount)

        return await self._db.write(run)
