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


def test_a_version_9_spam_filter_keeps_its_counts_and_gets_weight_tables(tmp_path: Path) -> None:
    from importlib import resources

    conn = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    folder = resources.files("pochta.store.sqlite").joinpath("migrations")
    for name in sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql")):
        if int(name[:4]) <= 9:
            conn.executescript(folder.joinpath(name).read_text())
    conn.execute("PRAGMA user_version=9")
    conn.execute("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
    conn.execute(
        "INSERT INTO accounts (address, domain_id, password_hash, created) VALUES ('a@example.test', 1, 'h', 0)"
    )
    conn.execute(
        "INSERT INTO spam_tokens (account_id, token, spam, ham) VALUES (0, 'cheap', 3, 1), (1, 'tulips', 1, 0)"
    )
    conn.execute("INSERT INTO spam_totals (account_id, spam, ham, generation) VALUES (0, 3, 4, 12), (1, 1, 0, 1)")
    conn.execute("INSERT INTO spam_trained (account_id, message, is_spam) VALUES (0, 'm1', 1)")
    assert migrate(conn) >= 10
    assert conn.execute("SELECT account_id, token, spam, ham FROM spam_tokens ORDER BY account_id").fetchall() == [
        (0, "cheap", 3, 1),
        (1, "tulips", 1, 0),
    ]
    assert conn.execute("SELECT spam, ham, generation FROM spam_totals WHERE account_id = 0").fetchone() == (3, 4, 12)
    assert conn.execute("SELECT * FROM spam_trained").fetchall() == [(0, "m1", 1)]
    assert conn.execute("SELECT count(*) FROM spam_word_weights").fetchone() == (0,)
    conn.execute("INSERT INTO spam_word_weights (account_id, token, weight) VALUES (1, 'tulips', 2.5)")
    conn.execute("INSERT INTO spam_gram_weights (account_id, gram, weight) VALUES (1, 4294967295, -1.0), (0, 5, 1.0)")
    conn.execute("DELETE FROM accounts WHERE id = 1")  # the account's whole model goes with it, the global stays
    assert conn.execute("SELECT account_id FROM spam_tokens").fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM spam_word_weights").fetchone() == (0,)
    assert conn.execute("SELECT account_id, gram, weight FROM spam_gram_weights").fetchall() == [(0, 5, 1.0)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
