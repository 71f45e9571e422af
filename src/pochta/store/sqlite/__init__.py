"""The embedded store: one SQLite database in WAL mode (see engine.py for the group commit)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pochta.store.sqlite.archive import SqliteArchive
from pochta.store.sqlite.directory import SqliteDirectory
from pochta.store.sqlite.engine import Engine
from pochta.store.sqlite.mailboxes import SqliteMailboxes
from pochta.store.sqlite.queue import SqliteQueue
from pochta.store.sqlite.retention import SqliteRetention
from pochta.store.sqlite.sieve import SqliteSieve
from pochta.store.sqlite.spam import SqliteSpam
from pochta.store.sqlite.wakes import Wakes

DATABASE_NAME = "pochta.sqlite3"


class SqliteStore(
    SqliteDirectory, SqliteMailboxes, SqliteQueue, SqliteSieve, SqliteRetention, SqliteArchive, SqliteSpam
):
    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self._watchers: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        self._wakes = Wakes(path.parent / "wake", database=path)
        try:
            self._db = Engine(path, fsync=fsync, on_commit=self._committed)
        except BaseException:
            self._wakes.close()
            raise

    @classmethod
    async def open(cls, data_dir: Path, *, fsync: bool = True) -> SqliteStore:
        def make() -> SqliteStore:
            data_dir.mkdir(parents=True, exist_ok=True)
            return cls(data_dir / DATABASE_NAME, fsync=fsync)

        return await asyncio.to_thread(make)

    def _committed(self, accounts: set[int]) -> None:
        self._wake(accounts)
        self._wakes.announce(accounts)

    def _wake(self, accounts: set[int] | None) -> None:
        """Wake the watchers of these accounts; of every account for None."""
        for account_id in self._watchers if accounts is None else accounts:
            for event in self._watchers.get(account_id, ()):
                event.set()

    def hear_others(self, on_queued: Callable[[], None]) -> None:
        self._wakes.listen(self._wake, on_queued)

    def announce_queued(self) -> None:
        self._wakes.announce((), queued=True)

    async def watch(self, account_id: int) -> AsyncIterator[None]:
        event = asyncio.Event()
        self._watchers[account_id].add(event)
        try:
            while True:
                await event.wait()
                event.clear()
                yield
        finally:
            self._watchers[account_id].discard(event)
            if not self._watchers[account_id]:
                del self._watchers[account_id]

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            self._wakes.close()
