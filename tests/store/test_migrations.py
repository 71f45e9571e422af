from __future__ import annotations

import sqlite3
from pathlib import Path

from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.store.sqlite.engine import migrate

EXPECTED_TABLES = {"meta", "domains", "accounts", "aliases", "mailboxes", "messages", "expunged"}


def test_migrations_from_an_empty_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "empty.sqlite3", isolation_level=None)
    version = migrate(conn)
    assert version >= 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= EXPECTED_TABLES
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert migrate(conn) == version  # idempotent
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_reopening_keeps_data(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    await store.add_domain("example.test")
    await store.close()
    store = await SqliteStore.open(tmp_path)
    assert [d.name for d in await store.list_domains()] == ["example.test"]
    await store.close()
    conn = sqlite3.connect(tmp_path / DATABASE_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
