"""Wake-ups between processes on one SQLite store: a commit in one wakes the watchers of another."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.store.sqlite.wakes import Wakes


async def _next(watch: AsyncIterator[None]) -> None:
    await asyncio.wait_for(anext(watch), 10)


def _into(heard: set[int]) -> Callable[[set[int] | None], None]:
    def on_accounts(accounts: set[int] | None) -> None:
        assert accounts is not None, "wake-ups were lost"
        heard.update(accounts)

    return on_accounts


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


async def test_a_commit_in_one_store_wakes_the_watchers_of_another_on_the_same_folder(tmp_path: Path) -> None:
    writer, listener = await SqliteStore.open(tmp_path), await SqliteStore.open(tmp_path)
    queued = asyncio.Event()
    try:
        await writer.add_domain("example.test")
        account = await writer.add_account("a@example.test", password_hash="x", scram=None)
        listener.hear_others(queued.set)
        watch = listener.watch(account.id)
        waiting = asyncio.ensure_future(_next(watch))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await writer.create_mailbox(account.id, "Projects")
        await waiting  # woken by the other store's commit
        writer.announce_queued()
        await asyncio.wait_for(queued.wait(), 10)
        await watch.aclose()  # type: ignore[attr-defined]
    finally:
        await writer.close()
        await listener.close()
    assert list((tmp_path / "wake").iterdir()) == []  # each listener removed its socket


async def test_another_process_commit_wakes_a_watcher(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    try:
        await store.add_domain("example.test")
        account = await store.add_account("a@example.test", password_hash="x", scram=None)
        store.hear_others(lambda: None)
        watch = store.watch(account.id)
        waiting = asyncio.ensure_future(_next(watch))
        child = textwrap.dedent(
            f"""
            import asyncio, sys
            from pathlib import Path
            from pochta.store.sqlite import SqliteStore

            async def main():
                store = await SqliteStore.open(Path(sys.argv[1]))
                await store.create_mailbox({account.id}, "Made elsewhere")
                await store.close()

            asyncio.run(main())
            """
        )
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", child, str(tmp_path))
        assert await process.wait() == 0
        await waiting
        await watch.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_many_accounts_arrive_in_several_datagrams(tmp_path: Path) -> None:
    sender, receiver = Wakes(tmp_path, database=tmp_path / "db"), Wakes(tmp_path, database=tmp_path / "db")
    heard: set[int] = set()
    try:
        receiver.listen(_into(heard), lambda: None)
        sender.announce(range(100_000, 102_000))  # 14,000 octets of ids: four datagrams
        await _until(lambda: len(heard) == 2000)
        assert heard == set(range(100_000, 102_000))
    finally:
        sender.close()
        receiver.close()


async def test_the_socket_of_a_process_that_died_is_removed_by_the_next_sender(tmp_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "999999-dead.sock"))
    dead.close()  # a crash: the file stays, nobody listens
    sender = Wakes(tmp_path, database=tmp_path / "db")
    try:
        sender.announce([1])
    finally:
        sender.close()
    assert not (tmp_path / "999999-dead.sock").exists()


async def test_a_data_folder_too_long_for_a_socket_address_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    sender, receiver = Wakes(deep, database=deep / "db"), Wakes(deep, database=deep / "db")
    heard: set[int] = set()
    try:
        receiver.listen(_into(heard), lambda: None)
        sender.announce([7])
        await _until(lambda: bool(heard))
        assert heard == {7}
    finally:
        sender.close()
        receiver.close()


async def test_a_listener_does_not_hear_itself(tmp_path: Path) -> None:
    wakes = Wakes(tmp_path, database=tmp_path / "db")
    heard: set[int] = set()
    try:
        wakes.listen(_into(heard), lambda: None)
        wakes.announce([1])
        await asyncio.sleep(0.05)
    finally:
        wakes.close()
    assert heard == set()


async def test_a_receiver_whose_queue_was_full_is_woken_for_everything(tmp_path: Path) -> None:
    sender, receiver = Wakes(tmp_path, database=tmp_path / "db"), Wakes(tmp_path, database=tmp_path / "db")
    heard: list[set[int] | None] = []
    queued = asyncio.Event()
    try:
        receiver.listen(heard.append, queued.set)
        queue_length = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())  # 10 here, 512 with systemd
        commits = queue_length + 40
        for account in range(1, commits + 1):  # more commits than its queue holds, before the receiver reads
            sender.announce([account])
        await asyncio.wait_for(queued.wait(), 5)  # "everything" also wakes the queue runner
        assert None in heard  # every watcher woken, so none of the accounts is missed
    finally:
        sender.close()
        receiver.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
async def test_files_a_root_run_command_makes_belong_to_the_databases_owner(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)  # the server's store, then handed to its user
    await store.close()
    nobody = pwd.getpwnam("nobody")
    for path in (tmp_path, tmp_path / DATABASE_NAME):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    for name in ("wake", DATABASE_NAME + "-writer"):
        path = tmp_path / name
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    store = await SqliteStore.open(tmp_path)  # `sudo pochta user add ...`
    await store.close()
    for name in ("wake", DATABASE_NAME + "-writer"):
        assert (tmp_path / name).stat().st_uid == nobody.pw_uid, name


def test_a_sender_that_closes_with_wake_ups_owed_still_sends_everything(tmp_path: Path) -> None:
    queue_length = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
    listening, go = threading.Event(), threading.Event()
    heard: list[set[int] | None] = []

    async def receive() -> None:
        receiver = Wakes(tmp_path, database=tmp_path / "db")
        try:
            receiver.listen(heard.append, lambda: None)
            listening.set()
            go.wait(10)  # its event loop is stuck meanwhile: the datagrams pile up and overflow
            await _until(lambda: None in heard)
        finally:
            receiver.close()

    thread = threading.Thread(target=asyncio.run, args=(receive(),))
    thread.start()
    assert listening.wait(10)
    sender = Wakes(tmp_path, database=tmp_path / "db")  # `pochta import`: its last commits, then it closes
    for account in range(1, queue_length + 41):
        sender.announce([account])
    threading.Timer(0.2, go.set).start()  # the receiver reads again while close() waits for room
    sender.close()
    thread.join(10)
    assert None in heard
