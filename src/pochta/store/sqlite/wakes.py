"""Wake-ups between the processes that share one SQLite store: what PostgreSQL's LISTEN/NOTIFY does for it.

A commit in one process (an MX process delivering, `pochta import`, the admin CLI) must wake an IMAP IDLE
or a queue runner in another. Each process that listens binds a unix datagram socket in the store's
``wake`` folder; after a commit, the writer sends the touched account ids to every socket there but its
own. A datagram costs a few microseconds and nobody waits for it. A receiver's queue holds only a few
datagrams (net.unix.max_dgram_qlen, 10 by default): a sender that finds it full sends "everything" to
that receiver a moment later, which wakes all its watchers and its queue runner. A socket nobody
listens on any more (its process crashed) is removed by the first sender to find it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pochta.store.sqlite.engine import follow_owner

log = logging.getLogger(__name__)

_QUEUED = b"q"  # the token for "mail was queued"; the others are account ids
_EVERYTHING = b"*"  # wake every watcher and the queue: what a receiver gets after datagrams were lost
_RETRY_SECONDS = 0.01  # how soon "everything" goes to a receiver whose queue was full; doubled while it stays
_MAX_RETRY_SECONDS = 1.0  # full (a receiver stopped or stuck), up to this
_CLOSE_WAIT_SECONDS = 1.0  # how long close() waits to send the "everything" still owed
_MAX_DATAGRAM = 4096
_SOCKET_SUFFIX = ".sock"
_MAX_SOCKET_PATH = 107  # sockaddr_un's sun_path holds 108 octets with the final NUL
_RELIST_SECONDS = 1.0  # read the folder at least this often
_RACY_NS = 100_000_000  # a folder changed this recently may change again within the same mtime tick


class Wakes:
    def __init__(self, directory: Path, *, database: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        follow_owner(directory, database)
        # A long data directory does not fit a socket address: name the folder through an fd of our own.
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        is_short = len(os.fsencode(directory)) < _MAX_SOCKET_PATH - 32
        self._prefix = f"{directory}/" if is_short else f"/proc/self/fd/{self._dir_fd}/"
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sender.setblocking(False)
        self._own: str | None = None  # our socket's file name, once listening
        self._receiver: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[str] = []
        self._closed = False
        self._overflowed: set[str] = set()  # receivers owed "everything"
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = _RETRY_SECONDS
        self._listed_at = -1  # the folder's mtime when _peers was read
        self._relist_after = 0.0  # and when to read it again even if that mtime stays

    def announce(self, accounts: Iterable[int], *, queued: bool = False) -> None:
        """Tell every other listening process that these accounts changed (and that mail was queued)."""
        tokens = [str(account).encode() for account in accounts]
        if queued:
            tokens.append(_QUEUED)
        if not tokens or self._closed:
            return
        peers = self._current_peers()
        if not peers:
            return
        for datagram in _datagrams(tokens):
            for name in peers:
                self._send(name, datagram)

    def listen(self, on_accounts: Callable[[set[int] | None], None], on_queued: Callable[[], None]) -> None:
        """From now on, call these (on the running event loop) for what other processes announce;
        `on_accounts(None)` means every account."""
        if self._receiver is not None:
            return
        loop = asyncio.get_running_loop()
        name = f"{os.getpid()}-{secrets.token_hex(4)}{_SOCKET_SUFFIX}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            receiver.setblocking(False)
            receiver.bind(self._prefix + name)
        except BaseException:
            receiver.close()
            raise
        self._receiver, self._own, self._loop = receiver, name, loop
        loop.add_reader(receiver.fileno(), self._receive, on_accounts, on_queued)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._overflowed:  # the commits just before closing (`pochta import`): wait a little for room
            self._sender.settimeout(_CLOSE_WAIT_SECONDS)
            for name in self._overflowed:
                with contextlib.suppress(OSError):
                    self._sender.sendto(_EVERYTHING, self._prefix + name)
        if self._retry is not None:
            self._retry.cancel()
        if self._receiver is not None:
            assert self._loop is not None and self._own is not None
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self._loop.remove_reader(self._receiver.fileno())
            self._receiver.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._own, dir_fd=self._dir_fd)
            self._receiver = None
        self._sender.close()
        os.close(self._dir_fd)

    def _current_peers(self) -> list[str]:
        # A stat per commit, a listing only when a process came or went (the folder's mtime moved).
        listed_at = os.stat(self._dir_fd).st_mtime_ns
        now = time.monotonic()
        is_racy = time.time_ns() - listed_at < _RACY_NS  # git's "racily clean" rule
        if listed_at != self._listed_at or now >= self._relist_after or is_racy:
            self._listed_at, self._relist_after = listed_at, now + _RELIST_SECONDS
            self._peers = [
                name for name in os.listdir(self._dir_fd) if name.endswith(_SOCKET_SUFFIX) and name != self._own
            ]
        return self._peers

    def _send(self, name: str, datagram: bytes) -> None:
        try:
            self._sender.sendto(datagram, self._prefix + name)
        except BlockingIOError:  # its queue is full: it gets "everything" once it has read some
            self._overflowed.add(name)
            self._schedule_retry()
        except ConnectionRefusedError:  # nobody listens there: its process ended without removing it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._dir_fd)
        except FileNotFoundError:
            pass  # its process ended meanwhile; the next listing drops it
        except OSError as exc:
            log.warning("wake-up to %s failed: %s", name, exc)

    def _schedule_retry(self) -> None:
        if self._retry is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # announced from no event loop: nothing to retry on
            return
        self._retry = loop.call_later(self._retry_delay, self._send_everything)
        self._retry_delay = min(self._retry_delay * 2, _MAX_RETRY_SECONDS)

    def _send_everything(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        owed, self._overflowed = self._overflowed, set()
        for name in owed:
            self._send(name, _EVERYTHING)  # full again: back into _overflowed, and another retry
        if not self._overflowed:
            self._retry_delay = _RETRY_SECONDS

    def _receive(self, on_accounts: Callable[[set[int] | None], None], on_queued: Callable[[], None]) -> None:
        assert self._receiver is not None
        accounts: set[int] | None = set()
        queued = False
        while True:
            try:
                datagram = self._receiver.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            except OSError as exc:
                log.warning("reading wake-ups failed: %s", exc)
                break
            for token in datagram.split():
                if token == _QUEUED:
                    queued = True
                elif token == _EVERYTHING:
                    accounts, queued = None, True
                elif token.isdigit() and accounts is not None:
                    accounts.add(int(token))
        try:
            if accounts is None or accounts:
                on_accounts(accounts)
        finally:
            if queued:
                on_queued()


def _datagrams(tokens: list[bytes]) -> Iterable[bytes]:
    """The tokens space-separated, in datagrams of at most _MAX_DATAGRAM octets."""
    start, size = 0, 0
    for index, token in enumerate(tokens):
        if size + len(token) + 1 > _MAX_DATAGRAM:
            yield b" ".join(tokens[start:index])
            start, size = index, 0
        size += len(token) + 1
    yield b" ".join(tokens[start:])
