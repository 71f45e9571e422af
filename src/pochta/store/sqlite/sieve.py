"""Sieve scripts and the marks they leave (vacation replies sent, duplicate ids seen) in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pochta.store.api import (
    ActiveScript,
    AlreadyExists,
    Conflict,
    LimitReached,
    MarkKind,
    NotFound,
    SieveScript,
)
from pochta.store.sqlite.engine import Engine, WriteResult

_COLUMNS = "id, account_id, name, source, active, version, updated"


def _script(row: tuple[Any, ...]) -> SieveScript:
    return SieveScript(
        id=row[0],
        account_id=row[1],
        name=row[2],
        source=row[3],
        is_active=bool(row[4]),
        version=row[5],
        updated=datetime.fromtimestamp(row[6], UTC),
    )


def _seconds(when: datetime) -> int:
    return int(when.timestamp())


class SqliteSieve:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def put_sieve_script(self, account_id: int, name: str, source: str, *, max_scripts: int = 0) -> SieveScript:
        def run(conn: sqlite3.Connection) -> WriteResult[SieveScript]:
            now = int(datetime.now(UTC).timestamp())
            cursor = conn.execute(
                "UPDATE sieve_scripts SET source = ?, version = version + 1, updated = ?"
                " WHERE account_id = ? AND name = ?",
                (source, now, account_id, name),
            )
            if cursor.rowcount == 0:
                (count,) = conn.execute(
                    "SELECT count(*) FROM sieve_scripts WHERE account_id = ?", (account_id,)
                ).fetchone()
                if max_scripts and count >= max_scripts:
                    raise LimitReached(f"account {account_id} has {count} of {max_scripts} scripts")
                try:
                    conn.execute(
                        "INSERT INTO sieve_scripts (account_id, name, source, updated) VALUES (?,?,?,?)",
                        (account_id, name, source, now),
                    )
                except sqlite3.IntegrityError as exc:
                    raise NotFound(f"no account {account_id}") from exc
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            return WriteResult(_script(row))

        return await self._db.write(run)

    async def get_sieve_script(self, account_id: int, name: str) -> SieveScript | None:
        def run(conn: sqlite3.Connection) -> SieveScript | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            return _script(row) if row else None

        return await self._db.read(run)

    async def get_sieve_script_by_id(self, script_id: int) -> SieveScript | None:
        def run(conn: sqlite3.Connection) -> SieveScript | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM sieve_scripts WHERE id = ?", (script_id,)).fetchone()
            return _script(row) if row else None

        return await self._db.read(run)

    async def list_sieve_scripts(self, account_id: int) -> list[SieveScript]:
        def run(conn: sqlite3.Connection) -> list[SieveScript]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = ? ORDER BY name", (account_id,)
            ).fetchall()
            return [_script(row) for row in rows]

        return await self._db.read(run)

    async def active_sieve_scripts(self, account_ids: Sequence[int]) -> list[ActiveScript]:
        wanted = sorted(set(account_ids))
        if not wanted:
            return []

        def run(conn: sqlite3.Connection) -> list[ActiveScript]:
            rows = conn.execute(
                f"SELECT account_id, id, version FROM sieve_scripts WHERE active = 1"
                f" AND account_id IN ({','.join('?' * len(wanted))})",
                wanted,
            ).fetchall()
            return [ActiveScript(account_id=row[0], script_id=row[1], version=row[2]) for row in rows]

        return await self._db.read(run, is_quick=True)

    async def activate_sieve_script(self, account_id: int, name: str | None) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if (
                name is not None
                and not conn.execute(
                    "SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name)
                ).fetchone()
            ):
                raise NotFound(f"no script {name!r}")
            conn.execute("UPDATE sieve_scripts SET active = 0 WHERE account_id = ? AND active = 1", (account_id,))
            if name is not None:
                conn.execute(
                    "UPDATE sieve_scripts SET active = 1 WHERE account_id = ? AND name = ?", (account_id, name)
                )
            return WriteResult(None)

        await self._db.write(run)

    async def delete_sieve_script(self, account_id: int, name: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            row = conn.execute(
                "SELECT active FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"no script {name!r}")
            if row[0]:
                raise Conflict(f"script {name!r} is active")
            conn.execute("DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name))
            return WriteResult(None)

        await self._db.write(run)

    async def rename_sieve_script(self, account_id: int, old: str, new: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if (
                old != new
                and conn.execute(
                    "SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, new)
                ).fetchone()
            ):
                raise AlreadyExists(f"script {new!r} exists")
            cursor = conn.execute(
                "UPDATE sieve_scripts SET name = ?, version = version + 1 WHERE account_id = ? AND name = ?",
                (new, account_id, old),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no script {old!r}")
            return WriteResult(None)

        await self._db.write(run)

    async def has_sieve_mark(self, account_id: int, kind: MarkKind, key: str, *, now: datetime) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM sieve_marks WHERE account_id = ? AND kind = ? AND key = ? AND expires > ?",
                (account_id, str(kind), key, _seconds(now)),
            ).fetchone()
            return row is not None

        return await self._db.read(run)

    async def set_sieve_mark(
        self, account_id: int, kind: MarkKind, key: str, *, expires: datetime, now: datetime, is_renewed: bool = False
    ) -> bool:
        def run(conn: sqlite3.Connection) -> WriteResult[bool]:
            # Expired marks of this account go first, so the table holds only what can still matter.
            conn.execute("DELETE FROM sieve_marks WHERE account_id = ? AND expires <= ?", (account_id, _seconds(now)))
            cursor = conn.execute(
                f"INSERT OR {'REPLACE' if is_renewed else 'IGNORE'} INTO sieve_marks (account_id, kind, key, expires)"
                " VALUES (?,?,?,?)",
                (account_id, str(kind), key, _seconds(expires)),
            )
            return WriteResult(cursor.rowcount == 1)

        return await self._db.write(run)
