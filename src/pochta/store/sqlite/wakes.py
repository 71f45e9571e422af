"""Wake-ups between the processes that share one SQLite store: what PostgreSQL's LISTEN/NOTIFY does for it.

A commit in one process (an MX process delivering, `pochta import`, the admin CLI) must wake an IMAP IDLE
or a queue runner in another. Each process that listens binds a unix datagram socket in the store's
``wake`` folder; after a commit, the writer sends the touched account ids to every socket there but its
own. A datagram costs a few microseconds and nobody waits for it: a wake-up that finds a full receive
buffer is dropped, because that receiver has wake-ups pending already, and a socket nobody listens on
any more (its process crashed) is removed by the first sender to find it so.
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

log = logging.getLogger(__name__)

_QUEUED = b"q"  # the token for "mail was queued"; the others are account ids
_MAX_DATAGRAM = 4096
_SOCKET_SUFFIX = ".sock"
_MAX_SOCKET_PATH = 107  # sockaddr_un's sun_path holds 108 octets with the final NUL
_RELIST_SECONDS = 1.0  # a folder's mtime moves in clock ticks, so two changes in one tick look like one


class Wakes:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        # A long data directory does not fit a socket address: name the folder through an fd of our own.
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._prefix = (
            f"{directory}/" if len(str(directory)) < _MAX_SOCKET_PATH - 32 else f"/proc/self/fd/{self._dir_fd}/"
        )
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sender.setblocking(False)
        self._own: str | None = None  # our socket's file name, once listening
        self._receiver: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[str] = []
        self._closed = False
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

    def listen(self, on_accounts: Callable[[set[int]], None], on_queued: Callable[[], None]) -> None:
        """From now on, call these (on the running event loop) for what other processes announce."""
        if self._receiver is not None:
            return
        loop = asyncio.get_running_loop()
        name = f"{os.getpid()}-{secrets.token_hex(4)}{_SOCKET_SUFFIX}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        receiver.setblocking(False)
        receiver.bind(self._prefix + name)
        self._receiver, self._own, self._loop = receiver, name, loop
        loop.add_reader(receiver.fileno(), self._receive, on_accounts, on_queued)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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
        if listed_at != self._listed_at or now >= self._relist_after:
            self._listed_at, self._relist_after = listed_at, now + _RELIST_SECONDS
            self._peers = [
                name for name in os.listdir(self._dir_fd) if name.endswith(_SOCKET_SUFFIX) and name != self._own
            ]
        return self._peers

    def _send(self, name: str, datagram: bytes) -> None:
        try:
            self._sender.sendto(datagram, self._prefix + name)
        except BlockingIOError:
            pass  # its buffer is full of wake-ups it has still to read
        except ConnectionRefusedError:  # nobody listens there: its process ended without removing it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._dir_fd)
        except FileNotFoundError:
            pass  # its process ended meanwhile; the next listing drops it
        except OSError as exc:
            log.warning("wake-up to %s failed: %s", name, exc)

    def _receive(self, on_accounts: Callable[[set[int]], None], on_queued: Callable[[], None]) -> None:
        assert self._receiver is not None
        accounts: set[int] = set()
        queued = False
        while True:
            try:
                datagram = self._receiver.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            for token in datagram.split():
                if token == _QUEUED:
                    queued = True
                elif token.isdigit():
                    accounts.add(int(token))
        if accounts:
            on_accounts(accounts)
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
