"""The SQLite engine's read paths: quick reads on the caller's thread, and their way round a locked database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from pochta.store.api import NotFound
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.store.sqlite.engine import Engine


async def test_a_quick_read_sees_the_last_commit(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    try:
        await store.add_domain("example.test")
        found = await store.lookup(["a@example.test"], ["example.test"])
        assert found.domains == {"example.test"} and not found.accounts
        account = await store.add_account("a@example.test", password_hash="h", scram=None)
        found = await store.lookup(["a@example.test"], ["example.test"])
        assert found.accounts["a@example.test"].id == account.id
    finally:
        await store.close()


async def test_a_quick_read_that_finds_the_database_locked_waits_on_a_reader_thread(tmp_path: Path) -> None:
    # SQLITE_BUSY reaches a WAL reader only in rare moments (a recovery, a WAL reset); `run` plays one here
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def run(conn: sqlite3.Connection) -> int:
        threads.append(threading.get_ident())
        if threading.get_ident() == loop_thread:
            raise sqlite3.OperationalError("database is locked")
        return int(conn.execute("SELECT count(*) FROM domains").fetchone()[0])

    try:
        assert await engine.read(run, is_quick=True) == 0
        assert threads[0] == loop_thread and threads[1] != loop_thread
    finally:
        await engine.close()


async def test_a_quick_reads_own_error_is_raised_at_once(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    calls: list[int] = []

    def run(conn: sqlite3.Connection) -> None:
        calls.append(threading.get_ident())
        raise NotFound("no such thing")

    try:
        with pytest.raises(NotFound):
            await engine.read(run, is_quick=True)
        assert calls == [threading.get_ident()]  # not tried again elsewhere
    finally:
        await engine.close()


async def test_commits_are_copied_back_into_the_database_file_by_the_checkpointer(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    try:
        before = (tmp_path / DATABASE_NAME).stat().st_size
        await store.add_domain("example.test")
        for n in range(200):  # a few hundred KiB of WAL
            await store.add_account(f"user{n}@example.test", password_hash="h" * 1000, scram=None)
        checkpointer = store._db._checkpointer
        for _ in range(100):
            if checkpointer.checkpoints and (tmp_path / DATABASE_NAME).stat().st_size > before + 200_000:
                break
            await asyncio.sleep(0.05)
        assert checkpointer.checkpoints > 0
        assert (tmp_path / DATABASE_NAME).stat().st_size > before + 200_000  # the accounts reached the file
    finally:
        await store.close()
    assert not (tmp_path / (DATABASE_NAME + "-wal")).exists()  # the last connection checkpointed the rest
