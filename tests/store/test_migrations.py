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


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    from importlib import resources

    conn = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    first = resources.files("pochta.store.sqlite").joinpath("migrations", "0001_initial.sql").read_text()
    conn.executescript(first)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
    conn.execute(
        "INSERT INTO accounts (address, domain_id, password_hash, created) VALUES ('a@example.test', 1, 'h', 0)"
    )
    conn.execute("INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (1, 'INBOX', 7)")
    conn.execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, internal_date, save_date, size, blob_id, structure)"
        " VALUES (1, 1, 2, 0, 0, 10, 'ab', x'00')"
    )
    assert migrate(conn) >= 2
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    assert "envelope" in columns
    assert conn.execute("SELECT uid, envelope FROM messages").fetchall() == [(1, None)]  # kept, envelope empty


def test_a_version_4_database_gets_the_archive_tables(tmp_path: Path) -> None:
    from importlib import resources

    conn = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    for name in ("0001_initial.sql", "0002_envelope.sql", "0003_queue.sql", "0004_dkim.sql"):
        conn.executescript(resources.files("pochta.store.sqlite").joinpath("migrations", name).read_text())
    conn.execute("PRAGMA user_version=4")
    assert migrate(conn) >= 7
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= {"retention_policies", "deleted_messages", "journal_domains", "journal", "quota_warnings"}
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
