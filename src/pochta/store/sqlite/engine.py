"""SQLite and the event loop: group commits of one writer connection, a small pool of reader threads.

SQLite allows one writer at a time, and each durable commit costs an fsync. Concurrent writes queue here
and are committed together: each job inside its own SAVEPOINT (so one failing job does not undo the
others), all of them with one fsync. A job's caller is answered only after that commit, so "returned"
always means "durable".

Two ways in to the one writer connection, which a lock hands to one at a time:

* the writer thread takes any job: a big one (a STORE over 100,000 messages, an import batch) runs
  there without holding up the event loop;
* a quick job (``is_quick``: the few rows of a delivery, asked for every message) runs its statements
  on the event loop, and only its COMMIT, which waits for the disk, goes to a thread. In the writer
  thread each of a delivery's statements handed the GIL to the event loop and waited to get it back;
  on the loop they take tens of microseconds from the page cache. Measured with bench/smtp_in.sh: CPU
  per message 1.34-1.44 -> 1.04-1.09 ms (one connection per message) and 0.87 -> 0.64 ms (several).
  While the writer thread holds the connection, quick jobs go to it too; while another process holds
  the lock file below, a thread waits for it and the statements then run on the loop, with the quick
  jobs that came meanwhile (two MX processes: 1.23 -> 1.15 ms CPU per message, idle CPU 11% -> 5%).
  The loop itself never waits for a lock.

Several processes may write one database (the MX processes of `[smtp] processes`, `pochta import`
beside a running server). Between them a lock file (:class:`_ProcessLock`) decides who writes next:
SQLite's own busy handler polls, sleeping 1, 2, 5, 10 ms and more between tries, so two busy writers
spent much of their time asleep with the lock free; a waiter on the lock file wakes the moment it is
released. Each writer takes the lock file before BEGIN IMMEDIATE and lets it go after COMMIT; a writer
that does not (the sqlite3 shell) is still kept out by SQLite's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from pochta.store.api import BlobWriter, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_BATCH = 512
QUICK_ROWS = 32  # messages a write may add and still be quick (run on the event loop): a few ms at most
_WRITER_BUSY_MS = 30_000  # how long the writer thread waits for another process's write to end
_MAX_READ_BATCH = 64
_CHECKPOINT_SECONDS = 0.5  # at most this often the WAL is copied back into the database file
_WAL_SIZE_LIMIT = 64 * 2**20  # octets the WAL file is cut back to when it restarts
_STOP = object()


@dataclass(slots=True)
class WriteResult(Generic[T]):
    """What a write job returns: its value and the accounts whose watchers must wake after commit."""

    value: T
    touched: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Read:
    run: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], WriteResult[Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    prepare: Sequence[Callable[[], object]] = ()  # file blobs to make durable before the transaction
    rows: Sequence[tuple[str, bytes]] = ()  # small blobs to write in it: (id, content)


def _connect(path: Path, *, fsync: bool, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when COMMIT returns (NORMAL in WAL mode may lose the last commits on
    # power loss). OFF only for throwaway test servers.
    conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if read_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's user_version; returns the version reached."""
    scripts = sorted(
        (entry for entry in resources.files(__package__).joinpath("migrations").iterdir()),
        key=lambda entry: entry.name,
    )
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    for script in scripts:
        number = int(script.name.split("_", 1)[0])
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script.read_text()):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store migrated to schema version %d", number)
        version = number
    return int(version)


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


class Engine:
    def __init__(self, path: Path, *, fsync: bool, on_commit: Callable[[set[int]], None], readers: int = 2) -> None:
        self.path = path
        self._fsync = fsync
        self._on_commit = on_commit
        writer_conn = _connect(path, fsync=fsync)
        migrate(writer_conn)
        # The writer never checkpoints: SQLite's automatic checkpoint ran inside COMMIT, holding up every job
        # of the next batch (~30% of the writer's time in bench/store_append.py, p99 commit 19 ms instead of
        # 7-11 ms). A thread of its own copies the WAL back while the writer goes on.
        writer_conn.execute("PRAGMA wal_autocheckpoint=0")
        writer_conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")  # the WAL file shrinks after a reset
        writer_conn.execute("PRAGMA busy_timeout=0")  # the loop must not wait; the writer thread sets its own
        self._conn = writer_conn
        self._process_lock = _ProcessLock(path)
        self._conn_lock = threading.Lock()  # who uses the writer connection: the writer thread or a loop
        self._home: asyncio.AbstractEventLoop | None = None  # the loop that commits quick jobs
        self._home_lock = threading.Lock()
        self._loop_jobs: list[_Job] = []
        self._loop_commits: asyncio.Task[None] | None = None
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._checkpointer = _Checkpointer(path, fsync=fsync)
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, args=(writer_conn,), name="sqlite-writer")
        self._writer.daemon = True
        self._writer.start()
        self._reads: queue.SimpleQueue[_Read | object] = queue.SimpleQueue()
        self._reader_threads = [
            threading.Thread(target=self._read_loop, name=f"sqlite-reader-{n}", daemon=True) for n in range(readers)
        ]
        for thread in self._reader_threads:
            thread.start()
        # Preparations (blob fsyncs) of one batch run side by side: parallel fsyncs share journal
        # commits (measured here: 1 thread 810 fsyncs/s, 8 threads 5,800/s).
        self._prepare_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sqlite-prepare")
        self._quick = threading.local()  # is_quick reads: one connection per calling thread (the event loop)
        self._quick_lock = threading.Lock()
        self._quick_connections: list[sqlite3.Connection] = []
        self._closed = False
        self.commits = 0  # group commits made (each one durable write of the WAL)
        self.jobs = 0  # write jobs they carried

    # ---- writes ----

    async def write(
        self,
        run: Callable[[sqlite3.Connection], WriteResult[T]],
        *,
        blobs: Sequence[BlobWriter] = (),
        is_quick: bool = False,
    ) -> T:
        """Run `run` in the next group commit, with the `blobs` its rows name made durable in the same round
        trip: small ones as rows of the same transaction (store/blobs.py), the others as files first, on the
        writer's side; if one fails, `run` does not run. `is_quick`: a write of a few rows, whose
        statements may run on the event loop (see the module's comment); one with blobs stored as files
        goes to the writer thread all the same."""
        if self._closed:
            raise StoreError("store is closed")
        rows: list[tuple[str, bytes]] = []
        prepare: list[Callable[[], object]] = []
        for blob in blobs:
            content = blob.inline()
            if content is None:
                prepare.append(blob.commit_sync)
            else:
                rows.append((blob.ref.id, content))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(run=run, loop=loop, future=future, prepare=prepare, rows=rows)
        if is_quick and not prepare and self._is_home(loop):
            self._loop_jobs.append(job)
            if self._loop_commits is None or self._loop_commits.done():
                self._loop_commits = loop.create_task(self._commit_on_loop())
        else:
            self._jobs.put(job)
        return await future

    def _is_home(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether quick jobs asked for on `loop` run there: on the first loop to ask (the server's one);
        another loop's go to the writer thread."""
        if self._home is None:
            with self._home_lock:
                if self._home is None:
                    self._home = loop
        return self._home is loop

    async def _commit_on_loop(self) -> None:
        """Group-commit the quick jobs: their statements here, the COMMIT in a thread; jobs that come
        meanwhile make the next commit."""
        loop = asyncio.get_running_loop()
        while self._loop_jobs:
            await asyncio.sleep(0)  # sessions already woken add their jobs to this commit
            batch, self._loop_jobs = self._loop_jobs[:_MAX_BATCH], self._loop_jobs[_MAX_BATCH:]
            if not self._conn_lock.acquire(blocking=False):
                self._to_writer(batch)  # the writer thread is at work: it takes these next
                continue
            if not self._process_lock.try_acquire():
                # Another process writes: wait for it on a thread, then run the statements here all the
                # same (on the writer thread they would cost a GIL hand-off each), with the jobs come since.
                if not await self._wait_for_other_processes(loop, batch):
                    continue
                room = _MAX_BATCH - len(batch)
                batch += self._loop_jobs[:room]
                del self._loop_jobs[:room]
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")  # busy_timeout 0: raises when another process writes
            except BaseException as exc:
                self._release()
                if not isinstance(exc, sqlite3.Error):
                    raise
                self._to_writer(batch)  # which waits for that process
                continue
            try:
                outcomes, touched = _run_jobs(conn, batch, {})
                # The commit thread releases the connection and the callback answers the callers,
                # whatever becomes of this task meanwhile (a cancelled close(), a loop shutting down).
                commit = loop.run_in_executor(self._committer, self._commit_and_release, conn)
            except BaseException as exc:  # not a job's own failure (those are outcomes): the transaction's
                log.exception("store write failed; %d writes refused", len(batch))
                _rollback(conn)
                self._release()
                self._finish(batch, [(False, None)] * len(batch), set(), exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            commit.add_done_callback(functools.partial(self._committed, batch, outcomes, touched))
            await asyncio.shield(commit)

    async def _wait_for_other_processes(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> bool:
        """Take the process lock off the loop, holding the connection lock. False if that failed or this task
        was cancelled meanwhile: `batch` then goes to the writer thread, and whichever of this task and the
        waiting thread comes second lets both locks go."""
        wait = _LockWait()

        def take() -> None:
            self._process_lock.acquire()
            with wait.lock:
                wait.taken = True
                if wait.abandoned:
                    self._release()

        try:
            await asyncio.shield(loop.run_in_executor(self._committer, take))
        except BaseException as exc:
            with wait.lock:
                wait.abandoned = True
                if wait.taken:
                    self._release()
                elif not isinstance(exc, asyncio.CancelledError):  # the thread never started: nobody waits
                    self._conn_lock.release()
            self._to_writer(batch)
            if isinstance(exc, asyncio.CancelledError):
                self._to_writer(self._loop_jobs)  # nothing on this loop commits them now
                self._loop_jobs = []
                raise
            return False
        return True

    def _committed(
        self,
        batch: list[_Job],
        outcomes: list[tuple[bool, Any]],
        touched: set[int],
        commit: asyncio.Future[Exception | None],
    ) -> None:
        if commit.cancelled():  # only when the executor was shut down under it
            failure: BaseException | None = StoreError("commit cancelled")
        else:
            failure = commit.exception() or commit.result()
        self._finish(batch, outcomes, touched, failure)

    def _finish(
        self, batch: list[_Job], outcomes: list[tuple[bool, Any]], touched: set[int], failure: BaseException | None
    ) -> None:
        """Answer the callers of a commit made from the loop (`failure`: the COMMIT's, if any)."""
        self._done(batch, outcomes, touched, failure)
        _settle_all([(job.future, ok, value) for job, (ok, value) in zip(batch, outcomes, strict=True)])
        if touched:
            try:
                self._on_commit(touched)
            except Exception:  # a watcher's failure must not hold up the next commits
                log.exception("waking watchers after a commit failed")

    def _to_writer(self, batch: list[_Job]) -> None:
        for job in batch:
            self._jobs.put(job)

    def _commit_and_release(self, conn: sqlite3.Connection) -> Exception | None:
        """COMMIT the open transaction (on a thread: it waits for the fsync); its failure, if any."""
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("store commit failed")
            _rollback(conn)
            return exc
        finally:
            self._release()
        return None

    def _release(self) -> None:
        """Give up the writer connection: to the other processes, then to this one's writers."""
        self._process_lock.release()
        self._conn_lock.release()

    def _done(
        self, batch: list[_Job], outcomes: list[tuple[bool, Any]], touched: set[int], failure: BaseException | None
    ) -> None:
        """Count a commit; a failed one fails every job of it."""
        if failure is None:
            self.commits += 1
            self.jobs += len(batch)
            self._checkpointer.wake()
            return
        outcomes[:] = [(False, StoreError(f"commit failed: {failure}"))] * len(batch)
        touched.clear()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                with self._conn_lock:
                    conn.close()
                return
            batch: list[_Job] = [first]  # type: ignore[list-item]
            stop_after = False
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._run_batch(conn, batch)
            if stop_after:
                with self._conn_lock:
                    conn.close()
                return

    def _prepare(self, batch: list[_Job]) -> dict[int, BaseException]:
        """Run every job's preparations in parallel; returns the failures by job index."""
        pending = [(index, self._prepare_pool.submit(step)) for index, job in enumerate(batch) for step in job.prepare]
        failures: dict[int, BaseException] = {}
        for index, future in pending:
            exc = future.exception()
            if exc is not None:
                failures.setdefault(index, exc)
        return failures

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        failures = self._prepare(batch) if any(job.prepare for job in batch) else {}
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        touched: set[int] = set()
        failure: Exception | None = None
        with self._conn_lock:
            # This thread may wait for another process's write (the loop never does: see write()).
            self._process_lock.acquire()
            try:
                conn.execute(f"PRAGMA busy_timeout={_WRITER_BUSY_MS}")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                finally:
                    conn.execute("PRAGMA busy_timeout=0")
                outcomes, touched = _run_jobs(conn, batch, failures)
                conn.execute("COMMIT")
            except Exception as exc:
                log.exception("store commit failed; %d writes refused", len(batch))
                _rollback(conn)
                failure = exc
            finally:
                self._process_lock.release()
        self._done(batch, outcomes, touched, failure)
        if touched:  # before the callers are answered, as on the loop: a caller's next step sees them woken
            with contextlib.suppress(RuntimeError):  # that loop has closed; the callers are still answered
                batch[0].loop.call_soon_threadsafe(self._on_commit, touched)
        _settle_batch([(job.loop, job.future, ok, value) for job, (ok, value) in zip(batch, outcomes, strict=True)])

    # ---- reads ----

    async def read(self, run: Callable[[sqlite3.Connection], T], *, is_quick: bool = False) -> T:
        """`run` in a read transaction on a reader thread; `is_quick` (a lookup by key of a few rows, asked
        for every recipient or message) runs it on the caller's thread instead: from the page cache it
        takes microseconds, and the hand-off to a reader thread and back cost ~50 µs of GIL traffic
        (measured here). A quick read that finds the database busy goes to a reader thread after all."""
        if self._closed:
            raise StoreError("store is closed")
        if is_quick:
            try:
                ok, value = _run_read(self._quick_connection(), run)
            except sqlite3.OperationalError:
                ok, value = False, None
            if ok:
                return value  # type: ignore[no-any-return]
            if not isinstance(value, sqlite3.OperationalError | None):
                raise value
            # locked (a recovery, a WAL reset; or a real error, which the reader raises again): wait there
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._reads.put(_Read(run=run, loop=loop, future=future))
        return await future

    def _quick_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._quick, "conn", None)
        if conn is None:
            conn = _connect(self.path, fsync=self._fsync, read_only=True)
            conn.execute("PRAGMA busy_timeout=0")  # never block the event loop waiting for a lock
            self._quick.conn = conn
            with self._quick_lock:
                self._quick_connections.append(conn)
        return conn

    def _read_loop(self) -> None:
        # Like the writer, a reader takes every read waiting and answers them with one wake-up of the
        # event loop: per-read hand-offs (a thread pool) cost more in futex traffic than the reads.
        conn = _connect(self.path, fsync=self._fsync, read_only=True)
        try:
            while True:
                first = self._reads.get()
                if first is _STOP:
                    return
                batch: list[_Read] = [first]  # type: ignore[list-item]
                while len(batch) < _MAX_READ_BATCH:
                    try:
                        item = self._reads.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._reads.put(_STOP)  # for this thread's next turn, after the batch
                        break
                    batch.append(item)  # type: ignore[arg-type]
                _settle_batch([(read.loop, read.future, *_run_read(conn, read.run)) for read in batch])
        finally:
            conn.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop_commits is not None and self._home is asyncio.get_running_loop():
            try:
                await asyncio.shield(self._loop_commits)  # the quick jobs already asked for still commit
            except asyncio.CancelledError:
                if not self._loop_commits.cancelled():  # close() itself was cancelled
                    raise
            except Exception:
                log.exception("committing the last quick writes failed")
        self._to_writer(self._loop_jobs)  # any left (their task was cancelled): the writer takes them
        self._loop_jobs = []
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._checkpointer.stop)
        for _ in self._reader_threads:
            self._reads.put(_STOP)
        for thread in self._reader_threads:
            await asyncio.to_thread(thread.join)
        self._prepare_pool.shutdown(wait=True)
        self._committer.shutdown(wait=True)
        self._process_lock.close()
        with self._quick_lock:
            for conn in self._quick_connections:
                conn.close()
            self._quick_connections.clear()
        # SQLite's last connection to close copies the WAL back and deletes it, but connections closing at
        # the same moment (the reader threads') each see the others still open and leave it (3 runs in 200
        # of the checkpointer test). One more, opened once all are closed, is the last one.
        await asyncio.to_thread(_close_last, self.path, fsync=self._fsync)


@dataclass(slots=True)
class _LockWait:
    lock: threading.Lock = field(default_factory=threading.Lock)
    taken: bool = False  # the waiting thread has the process lock
    abandoned: bool = False  # the task that asked for it is gone


class _ProcessLock:
    """Which process writes the database next: an exclusive flock on a file beside it. The kernel lets it
    go when its holder exits, crashed or not; the connection lock already orders this process's writers.

    It never raises: on a filesystem without flock (some network and FUSE ones) it turns itself off with a
    warning, and SQLite's own lock, polled by its busy handler, orders the processes as before."""

    def __init__(self, database: Path) -> None:
        # Read-only is enough for flock, and 0644 lets the server's user open a file root made (`sudo pochta
        # user add`); follow_owner gives it to the database's owner as SQLite does for -wal and -shm.
        path = Path(f"{database}-writer")
        self._fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        follow_owner(path, database)
        self._works = True

    def try_acquire(self) -> bool:
        return self._flock(fcntl.LOCK_EX | fcntl.LOCK_NB)

    def acquire(self) -> None:
        """Wait (off the event loop) for the lock: as long as another process's transaction lasts. With no
        time limit, unlike SQLite's 30 s busy timeout: a holder stopped mid-transaction (SIGSTOP) now holds
        writers up until it goes on or dies, instead of failing them after 30 s (a 451 either way)."""
        self._flock(fcntl.LOCK_EX)

    def release(self) -> None:
        self._flock(fcntl.LOCK_UN)

    def _flock(self, operation: int) -> bool:
        """False only when a non-blocking lock is held elsewhere."""
        if not self._works:
            return True
        try:
            fcntl.flock(self._fd, operation)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._works = False
            log.warning("the store's lock file cannot be locked (%s): processes wait on SQLite's lock instead", exc)
        return True

    def close(self) -> None:
        os.close(self._fd)


def follow_owner(path: Path, reference: Path) -> None:
    """Run as root, give `path` to the owner of `reference` (the database), as SQLite does for its -wal and
    -shm files: a root-run admin command must not leave files the server's user cannot open."""
    if os.geteuid() != 0 or not reference.exists():  # a new store: root makes (and owns) all of it
        return
    try:
        owner = reference.stat()
        if path.stat().st_uid != owner.st_uid:
            os.chown(path, owner.st_uid, owner.st_gid)
    except OSError as exc:
        log.warning("could not give %s to the database's owner: %s", path, exc)


class _Checkpointer:
    """Copies committed WAL frames back into the database file (a PASSIVE checkpoint: it never waits for, nor
    holds up, the writer or readers), at most every `_CHECKPOINT_SECONDS` while commits come. The WAL restarts
    from its beginning at the next write once every frame is copied, so it stays small under load."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self._path = path
        self._fsync = fsync
        self._pending = threading.Event()  # a commit came since the last checkpoint
        self._stopped = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._pending.set()

    def stop(self) -> None:
        self._stopped.set()
        self._pending.set()
        self._thread.join()

    def _loop(self) -> None:
        conn = _connect(self._path, fsync=self._fsync)
        try:
            while True:
                self._pending.wait()
                self._pending.clear()
                if self._stopped.is_set():
                    return  # the last connection to close checkpoints what is left
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error:  # the next round tries again; the WAL still holds every commit
                    log.warning("store checkpoint failed", exc_info=True)
                self._stopped.wait(_CHECKPOINT_SECONDS)  # let the next commits gather
        finally:
            conn.close()


def _close_last(path: Path, *, fsync: bool) -> None:
    """Open the database (never making one: mode=rw), read it, which opens its WAL, and close it."""
    try:
        # a short timeout: when another process holds the database, it is not the last and need not wait
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=1.0)
        try:
            conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")  # the checkpoint's fsyncs
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:  # the WAL stays, and the next open recovers from it: nothing is lost
        log.warning("closing the store: the last checkpoint failed: %s", exc)


def _run_read(conn: sqlite3.Connection, run: Callable[[sqlite3.Connection], Any]) -> tuple[bool, Any]:
    conn.execute("BEGIN")  # one snapshot for everything the read does
    try:
        return True, run(conn)
    except Exception as exc:
        return False, exc
    finally:
        conn.execute("COMMIT")


def _run_jobs(
    conn: sqlite3.Connection, batch: list[_Job], failures: dict[int, BaseException]
) -> tuple[list[tuple[bool, Any]], set[int]]:
    """Each job of `batch` in a savepoint of the open transaction: a job's failure undoes it alone.
    Returns each job's (ok, value or exception) and the accounts touched."""
    outcomes: list[tuple[bool, Any]] = []
    touched: set[int] = set()
    for index, job in enumerate(batch):
        if index in failures:
            outcomes.append((False, failures[index]))
            continue
        conn.execute("SAVEPOINT job")
        try:
            if job.rows:
                conn.executemany("INSERT OR IGNORE INTO blobs (id, data) VALUES (?, ?)", job.rows)
            result = job.run(conn)
        except Exception as exc:  # the job's own failure; the others still commit
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            outcomes.append((False, exc))
        else:
            conn.execute("RELEASE job")
            outcomes.append((True, result.value))
            touched |= result.touched
    return outcomes, touched


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _settle_batch(outcomes: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], bool, Any]]) -> None:
    """Hand results back with one call per event loop (usually one), not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for loop, future, ok, value in outcomes:
        by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed; nobody waits any more
            loop.call_soon_threadsafe(_settle_all, items)


def _settle_all(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in items:
        _settle(future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
