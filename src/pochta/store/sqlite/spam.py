"""The spam filter's models, training records and allow/block lists in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pochta.store.api import AlreadyExists, NotFound, SpamForgotten, SpamListEntry, SpamModel, SpamTraining
from pochta.store.sqlite.engine import Engine, WriteResult

_CHUNK = 500  # digests per IN (...) query


class SqliteSpam:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def spam_model(self, account_id: int) -> SpamModel:
        def run(conn: sqlite3.Connection) -> SpamModel:
            # Reads run in one transaction (engine.py), so the counts and the totals agree.
            totals = conn.execute(
                "SELECT spam, ham, generation FROM spam_totals WHERE account_id = ?", (account_id,)
            ).fetchone()
            rows = conn.execute("SELECT token, spam, ham FROM spam_tokens WHERE account_id = ?", (account_id,))
            tokens = {token: (spam, ham) for token, spam, ham in rows}
            words = dict(
                conn.execute("SELECT token, weight FROM spam_word_weights WHERE account_id = ?", (account_id,))
            )
            grams = dict(conn.execute("SELECT gram, weight FROM spam_gram_weights WHERE account_id = ?", (account_id,)))
            spam, ham, generation = totals or (0, 0, 0)
            return SpamModel(tokens=tokens, spam=spam, ham=ham, generation=generation, words=words, grams=grams)

        return await self._db.read(run)

    async def spam_generation(self, account_id: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT generation FROM spam_totals WHERE account_id = ?", (account_id,)).fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(run)

    async def spam_totals(self, account_id: int) -> tuple[int, int]:
        return await self._db.read(lambda conn: _totals(conn, account_id))

    async def spam_trained(self, account_id: int, messages: Sequence[str]) -> dict[str, bool]:
        def run(conn: sqlite3.Connection) -> dict[str, bool]:
            found: dict[str, bool] = {}
            for start in range(0, len(messages), _CHUNK):
                chunk = messages[start : start + _CHUNK]
                rows = conn.execute(
                    "SELECT message, is_spam FROM spam_trained WHERE account_id = ? AND message IN"
                    f" ({','.join('?' * len(chunk))})",
                    (account_id, *chunk),
                )
                found.update((message, bool(is_spam)) for message, is_spam in rows)
            return found

        return await self._db.read(run)

    async def train_spam(self, training: SpamTraining) -> int:
        account_id = training.account_id

        def run(conn: sqlite3.Connection) -> WriteResult[int]:
            conn.executemany(
                "INSERT INTO spam_tokens (account_id, token, spam, ham) VALUES (?, ?, max(0, ?), max(0, ?))"
                " ON CONFLICT (account_id, token) DO UPDATE"
                " SET spam = max(0, spam + ?), ham = max(0, ham + ?)",
                ((account_id, token, spam, ham, spam, ham) for token, (spam, ham) in training.deltas.items()),
            )
            for table, column, changes in (
                ("spam_word_weights", "token", training.words),
                ("spam_gram_weights", "gram", training.grams),
            ):
                conn.executemany(
                    f"INSERT INTO {table} (account_id, {column}, weight) VALUES (?, ?, ?)"
                    f" ON CONFLICT (account_id, {column}) DO UPDATE SET weight = weight + excluded.weight",
                    ((account_id, key, change) for key, change in changes.items()),
                )
            if any(spam < 0 or ham < 0 for spam, ham in training.deltas.values()):
                conn.execute("DELETE FROM spam_tokens WHERE account_id = ? AND spam = 0 AND ham = 0", (account_id,))
            conn.execute(
                "INSERT INTO spam_totals (account_id, spam, ham, generation) VALUES (?, max(0, ?), max(0, ?), 1)"
                " ON CONFLICT (account_id) DO UPDATE"
                " SET spam = max(0, spam + ?), ham = max(0, ham + ?), generation = generation + 1",
                (account_id, training.spam, training.ham, training.spam, training.ham),
            )
            conn.executemany(
                "INSERT INTO spam_trained (account_id, message, is_spam) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id, message) DO UPDATE SET is_spam = excluded.is_spam",
                (
                    (account_id, message, is_spam)
                    for message, is_spam in training.trained.items()
                    if is_spam is not None
                ),
            )
            conn.executemany(
                "DELETE FROM spam_trained WHERE account_id = ? AND message = ?",
                ((account_id, message) for message, is_spam in training.trained.items() if is_spam is None),
            )
            (generation,) = conn.execute(
                "SELECT generation FROM spam_totals WHERE account_id = ?", (account_id,)
            ).fetchone()
            return WriteResult(int(generation))

        return await self._db.write(run)

    async def forget_spam_model(self, account_id: int) -> SpamForgotten:
        def run(conn: sqlite3.Connection) -> WriteResult[SpamForgotten]:
            spam, ham = _totals(conn, account_id)
            for table in ("spam_tokens", "spam_trained", "spam_word_weights", "spam_gram_weights"):
                conn.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))
            # a new generation, not none: every cached copy must see that it is stale
            (generation,) = conn.execute(
                "INSERT INTO spam_totals (account_id, spam, ham, generation) VALUES (?, 0, 0, 1)"
                " ON CONFLICT (account_id) DO UPDATE SET spam = 0, ham = 0, generation = generation + 1"
                " RETURNING generation",
                (account_id,),
            ).fetchone()
            return WriteResult(SpamForgotten(spam=spam, ham=ham, generation=int(generation)))

        return await self._db.write(run)

    async def add_spam_list_entry(self, entry: SpamListEntry) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            try:
                conn.execute(
                    "INSERT INTO spam_lists (account_id, pattern, is_block) VALUES (?, ?, ?)",
                    (entry.account_id, entry.pattern, entry.is_block),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"{entry.pattern} is already listed") from exc
            return WriteResult(None)

        await self._db.write(run)

    async def remove_spam_list_entry(self, account_id: int, pattern: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            cursor = conn.execute("DELETE FROM spam_lists WHERE account_id = ? AND pattern = ?", (account_id, pattern))
            if cursor.rowcount == 0:
                raise NotFound(f"{pattern} is not listed")
            return WriteResult(None)

        await self._db.write(run)

    async def spam_list(self, account_ids: Sequence[int]) -> list[SpamListEntry]:
        def run(conn: sqlite3.Connection) -> list[SpamListEntry]:
            rows = conn.execute(
                "SELECT account_id, pattern, is_block FROM spam_lists"
                f" WHERE account_id IN ({','.join('?' * len(account_ids))}) ORDER BY account_id, pattern",
                tuple(account_ids),
            ).fetchall()
            return [SpamListEntry(account_id=row[0], pattern=row[1], is_block=bool(row[2])) for row in rows]

        if not account_ids:
            return []
        return await self._db.read(run)


def _totals(conn: sqlite3.Connection, account_id: int) -> tuple[int, int]:
    """The spam and ham messages a model counted."""
    row = conn.execute("SELECT spam, ham FROM spam_totals WHERE account_id = ?", (account_id,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
