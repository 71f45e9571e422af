"""The SQLite engine's read paths: quick reads on the caller's thread, and their way round a locked database."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pochta.store.api import NotFound, StoreError
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.store.sqlite.engine import Engine, WriteResult


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


async def test_closing_a_store_whose_database_file_is_gone_makes_none(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    await store.add_domain("example.test")
    for name in (DATABASE_NAME, DATABASE_NAME + "-wal", DATABASE_NAME + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)  # removed under the running server
    await store.close()
    assert not (tmp_path / DATABASE_NAME).exists()


def _insert(
    name: str, threads: list[int] | None = None, *, fails: bool = False, touched: frozenset[int] = frozenset()
) -> Callable[[sqlite3.Connection], WriteResult[str]]:
    """A write job adding domain `name` (noting its thread in `threads`), failing after the insert if told."""

    def run(conn: sqlite3.Connection) -> WriteResult[str]:
        if threads is not None:
            threads.append(threading.get_ident())
        conn.execute("INSERT INTO domains (name, created) VALUES (?, 0)", (name,))
        if fails:
            raise NotFound(f"{name} fails after its insert")
        return WriteResult(name, touched=set(touched))

    return run


async def test_a_failed_write_leaves_nothing_alone_or_in_a_batch(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)

    def names(conn: sqlite3.Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT name FROM domains ORDER BY name")]

    try:
        with pytest.raises(NotFound):
            await engine.write(_insert("alone.test", fails=True))
        assert await engine.write(_insert("next.test")) == "next.test"

        def hold(conn: sqlite3.Connection) -> WriteResult[str]:
            time.sleep(0.3)  # the writer is busy while the next four queue up: they form one batch
            return WriteResult("held")

        held = asyncio.ensure_future(engine.write(hold))
        await asyncio.sleep(0.1)
        commits = engine.commits
        results = await asyncio.gather(
            *(engine.write(_insert(f"{n}.test", fails=n == 2)) for n in range(4)), return_exceptions=True
        )
        assert await held == "held" and engine.commits == commits + 2
        assert isinstance(results[2], NotFound) and [r for r in results if isinstance(r, str)] == [
            "0.test",
            "1.test",
            "3.test",
        ]
        assert await engine.read(names) == ["0.test", "1.test", "3.test", "next.test"]
    finally:
        await engine.close()


def _hold(conn: sqlite3.Connection) -> WriteResult[None]:
    """A write job that keeps the writer connection for 0.3 s."""
    time.sleep(0.3)
    return WriteResult(None)


def _count_domains(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM domains").fetchone()[0])


async def test_quick_writes_run_on_the_loop_and_commit_together(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=True, on_commit=lambda _: None)
    threads: list[int] = []
    try:
        commits = engine.commits
        names = await asyncio.gather(*(engine.write(_insert(f"{n}.test", threads), is_quick=True) for n in range(5)))
        assert names == [f"{n}.test" for n in range(5)]
        assert threads == [threading.get_ident()] * 5  # the statements ran here
        assert engine.commits == commits + 1  # and the five shared one commit
        assert await engine.read(_count_domains) == 5
    finally:
        await engine.close()


async def test_quick_writes_go_to_the_writer_thread_while_it_holds_the_connection(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    threads: list[int] = []

    try:
        held = asyncio.ensure_future(engine.write(_hold))
        await asyncio.sleep(0.1)
        assert await engine.write(_insert("a.test", threads), is_quick=True) == "a.test"
        await asyncio.wait_for(held, 10)
        assert threads and threads[0] != threading.get_ident()
    finally:
        await engine.close()


async def test_a_quick_write_never_waits_on_the_loop_for_another_process(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    other = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        write = asyncio.ensure_future(engine.write(_insert("a.test"), is_quick=True))
        ticks = 0
        for _ in range(10):  # the loop goes on meanwhile
            await asyncio.sleep(0.02)
            ticks += 1
        assert ticks == 10 and not write.done()
        other.execute("COMMIT")
        assert await write == "a.test"  # the writer thread waited for the lock and committed it
        assert await engine.read(_count_domains) == 1
    finally:
        other.close()
        await engine.close()


async def test_two_engines_on_one_database_take_turns_through_the_lock_file_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    # Two engines in one process hold the lock file open twice, so their flocks conflict as two processes' do.
    first = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    second = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    order: list[str] = []
    threads: list[int] = []

    holding = threading.Event()

    def hold(conn: sqlite3.Connection) -> WriteResult[None]:
        conn.execute("INSERT INTO domains (name, created) VALUES ('held.test', 0)")
        holding.set()
        time.sleep(0.3)  # the first engine's transaction, with the lock file taken
        order.append("held")
        return WriteResult(None)

    def after(conn: sqlite3.Connection) -> WriteResult[int]:
        order.append("after")
        threads.append(threading.get_ident())
        return WriteResult(_count_domains(conn))  # it runs on a snapshot that has the held row

    try:
        held = asyncio.ensure_future(first.write(hold))
        assert await asyncio.to_thread(holding.wait, 10)
        write = asyncio.ensure_future(second.write(after, is_quick=True))
        await asyncio.sleep(0.1)  # the loop turns meanwhile: the wait is on a thread
        assert not write.done()
        await asyncio.wait_for(held, 10)
        assert await asyncio.wait_for(write, 10) == 1
        assert order == ["held", "after"]
        assert threads == [threading.get_ident()]  # it waited off the loop, then ran its statements here
        assert await second.write(_insert("c.test", threads), is_quick=True) == "c.test"
        assert threads == [threading.get_ident()] * 2
    finally:
        await first.close()
        await second.close()


async def test_a_quick_write_waits_for_the_lock_file_alone(tmp_path: Path) -> None:
    # Another process holds only the lock file (it is between two transactions of a batch, say):
    # SQLite's lock is free, and still the write waits for its turn.
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    lock = os.open(tmp_path / (DATABASE_NAME + "-writer"), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write = asyncio.ensure_future(engine.write(_insert("a.test"), is_quick=True))
        await asyncio.sleep(0.2)
        assert not write.done()
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert await asyncio.wait_for(write, 10) == "a.test"
    finally:
        os.close(lock)
        await engine.close()


async def test_a_commit_task_cancelled_while_waiting_for_another_process_loses_no_write(tmp_path: Path) -> None:
    first = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)
    second = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)

    try:
        held = asyncio.ensure_future(first.write(_hold))
        await asyncio.sleep(0.1)
        write = asyncio.ensure_future(second.write(_insert("a.test"), is_quick=True))
        await asyncio.sleep(0.05)
        commits = second._loop_commits
        assert commits is not None and not commits.done()
        commits.cancel()  # a loop shutting down, while its thread still waits for the lock file
        await asyncio.wait_for(held, 10)
        assert await asyncio.wait_for(write, 10) == "a.test"  # the writer thread took it
        assert await first.write(_insert("b.test"), is_quick=True) == "b.test"  # the lock file was let go
        assert await second.write(_insert("c.test"), is_quick=True) == "c.test"
        assert await first.read(_count_domains) == 3
    finally:
        await first.close()
        await second.close()


async def test_a_failed_commit_fails_every_quick_write_in_it(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)

    def orphan(conn: sqlite3.Connection) -> WriteResult[None]:
        conn.execute("PRAGMA defer_foreign_keys=ON")  # the broken reference fails at COMMIT, not here
        conn.execute(
            "INSERT INTO accounts (address, domain_id, password_hash, created) VALUES ('x@nowhere.test', 999, 'h', 0)"
        )
        return WriteResult(None)

    try:
        results = await asyncio.gather(
            engine.write(_insert("a.test"), is_quick=True), engine.write(orphan, is_quick=True), return_exceptions=True
        )
        assert all(isinstance(result, StoreError) for result in results)
        assert await engine.read(_count_domains) == 0  # nothing of that commit is left
        assert await engine.write(_insert("b.test"), is_quick=True) == "b.test"  # and the next one works
    finally:
        await engine.close()


async def test_a_broken_transaction_on_the_loop_answers_every_write(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=lambda _: None)

    def breaks(conn: sqlite3.Connection) -> WriteResult[None]:
        conn.execute("ROLLBACK")  # a job that ends the transaction under the engine's feet
        return WriteResult(None)

    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                engine.write(_insert("a.test"), is_quick=True),
                engine.write(breaks, is_quick=True),
                return_exceptions=True,
            ),
            timeout=5,
        )
        assert all(isinstance(result, StoreError) for result in results)
        assert await engine.write(_insert("b.test"), is_quick=True) == "b.test"
        assert await engine.read(_count_domains) == 1
    finally:
        await engine.close()


async def test_a_cancelled_close_still_answers_the_quick_writes_committing(tmp_path: Path) -> None:
    engine = Engine(tmp_path / DATABASE_NAME, fsync=True, on_commit=lambda _: None)
    engine._committer.submit(time.sleep, 0.3)  # a slow disk: the COMMIT waits its turn
    write = asyncio.ensure_future(engine.write(_insert("a.test"), is_quick=True))
    await asyncio.sleep(0.05)  # its COMMIT is on its way
    closing = asyncio.ensure_future(engine.close())
    await asyncio.sleep(0)
    closing.cancel()
    assert await asyncio.wait_for(write, timeout=5) == "a.test"  # answered all the same: no retry, no duplicate
    with contextlib.suppress(asyncio.CancelledError):
        await closing


async def test_a_failing_watcher_does_not_hold_up_later_writes(tmp_path: Path) -> None:
    failures = [RuntimeError("a watcher broke")]

    def on_commit(touched: set[int]) -> None:
        if failures:
            raise failures.pop()

    engine = Engine(tmp_path / DATABASE_NAME, fsync=False, on_commit=on_commit)

    try:
        engine._committer.submit(time.sleep, 0.3)  # the first COMMIT waits: the second write comes meanwhile
        first = asyncio.ensure_future(engine.write(_insert("a.test", touched=frozenset({1})), is_quick=True))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(engine.write(_insert("b.test", touched=frozenset({1})), is_quick=True))
        assert await asyncio.wait_for(asyncio.gather(first, second), timeout=5) == ["a.test", "b.test"]
        assert not failures
    finally:
        await engine.close()
