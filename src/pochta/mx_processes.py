"""More processes for the MX port (``[smtp] processes``): one event loop is one core, and port 25 is where
the load is.

The main process binds every port, then starts the others. Each is `python -m pochta mx-process`: it
inherits the listening sockets of listen.smtp and accepts on them beside the main process (each new
connection wakes the processes waiting in their event loops, and the first to accept takes it: one busy
with sessions is seldom first), and opens the same store. What it commits wakes the main process's IMAP
IDLE and queue runner through the store (``hear_others``); it runs no queue, retention or training of its
own.

The config reaches a child on its standard input, which then stays open: end of file means the main
process is gone or stopping, and the child finishes its sessions and exits. The child says "ready" on
its standard output once it accepts; the main process counts itself started when every child has. A
child that exits on its own is started again after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import struct
import sys
from collections.abc import Sequence

from pochta.config import Config

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before a child that exited is started again, doubled while they keep failing
MAX_RESTART_DELAY = 60.0
STEADY_SECONDS = 60.0  # a child that ran this long resets the delay
READY_TIMEOUT = 60.0  # seconds a child may take to start (imports, store, spam model)
READY = b"ready\n"  # what a child writes to its standard output once it accepts
_LENGTH = struct.Struct("!I")


class MxProcesses:
    def __init__(self, config: Config, sockets: Sequence[socket.socket], *, count: int) -> None:
        self._config = config
        # Copies of our own: the listeners close theirs at shutdown, and a child started meanwhile must not
        # get a closed (or by then reused) descriptor number.
        self._fds = [os.dup(sock.fileno()) for sock in sockets]
        self._count = count
        self._stopping = asyncio.Event()
        self._children: set[asyncio.subprocess.Process] = set()
        self._keepers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the children; returns once each says it accepts (or failed to start: it is tried again)."""
        first = [asyncio.get_running_loop().create_future() for _ in range(2, self._count + 1)]
        self._keepers = [
            asyncio.ensure_future(self._keep(number, started))
            for number, started in zip(range(2, self._count + 1), first, strict=True)
        ]
        await asyncio.wait(first, timeout=READY_TIMEOUT)

    def stop_starting(self) -> None:
        """Start no more children, and tell those running to finish (before the listeners close)."""
        self._stopping.set()
        for child in self._children:
            _tell_to_stop(child)
        for fd in self._fds:  # with the listeners' own, so that port 25 stops listening now
            os.close(fd)
        self._fds = []

    async def stop(self, grace: float) -> None:
        """Wait for the children to finish their sessions (within `grace`) and exit, then kill the rest."""
        self.stop_starting()
        if self._keepers:
            _, pending = await asyncio.wait(self._keepers, timeout=grace + 10)
            for child in self._children:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            for keeper in pending:
                keeper.cancel()
            await asyncio.gather(*self._keepers, return_exceptions=True)

    async def _keep(self, number: int, started: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY
        while not self._stopping.is_set():
            born = loop.time()
            try:
                child = await self._spawn()
            except Exception as exc:  # no executable, no file descriptors left, ...: try again
                log.error("MX process number=%d could not start: %s", number, exc)
                _settle(started)
                await self._pause(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY)
                continue
            self._children.add(child)
            if self._stopping.is_set():  # stop() came while it was starting
                _tell_to_stop(child)
            try:
                if not await self._is_ready(number, child) and not self._stopping.is_set():
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()  # hung in its start: a new one is started below
                _settle(started)
                code = await child.wait()
            finally:
                self._children.discard(child)
            if self._stopping.is_set():
                return
            if loop.time() - born >= STEADY_SECONDS:
                delay = RESTART_DELAY
            log.error(
                "MX process exited number=%d pid=%d code=%s; starting another in %.0f s", number, child.pid, code, delay
            )
            await self._pause(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _spawn(self) -> asyncio.subprocess.Process:
        fds = ",".join(map(str, self._fds))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pochta",
            "mx-process",
            "--fds",
            fds,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=self._fds,
        )
        assert child.stdin is not None
        config = pickle.dumps(self._config)
        try:
            child.stdin.write(_LENGTH.pack(len(config)) + config)
            await child.stdin.drain()
        except (ConnectionError, RuntimeError):  # it died at once; whoever waits for it sees its exit
            log.error("MX process pid=%d went before taking its config", child.pid)
        return child

    async def _pause(self, seconds: float) -> None:
        """A restart pause that a stop cuts short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _is_ready(self, number: int, child: asyncio.subprocess.Process) -> bool:
        """Whether it wrote its line on standard output (it accepts on port 25 from now on) in time."""
        assert child.stdout is not None
        stdout = child.stdout

        async def ready_line() -> bytes:
            while line := await stdout.readline():  # whatever a library printed before it
                if line == READY:
                    return line
            return b""

        try:
            line = await asyncio.wait_for(ready_line(), READY_TIMEOUT)
        except TimeoutError:
            line = b""
        if line == READY:
            log.info("MX process ready number=%d pid=%d", number, child.pid)
            return True
        if not self._stopping.is_set():
            log.error("MX process number=%d pid=%d did not start", number, child.pid)
        return False


def _tell_to_stop(child: asyncio.subprocess.Process) -> None:
    if child.stdin is not None:
        child.stdin.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def read_config(stream: int) -> Config:
    """The config a child gets from its parent on `stream` (its standard input)."""
    header = _read_exactly(stream, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    config = pickle.loads(_read_exactly(stream, length))  # from our own parent, over a pipe only it holds
    if not isinstance(config, Config):
        raise TypeError("the parent sent no config")
    return config


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError("the parent went away before sending the config")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def inherited_sockets(fds: Sequence[int]) -> list[socket.socket]:
    return [socket.socket(fileno=fd) for fd in fds]


def stop_when_parent_goes(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, stream: int = 0) -> None:
    """Set `stop` at end of file on `stream` (the parent closed our standard input, or died)."""

    def readable() -> None:
        try:
            data = os.read(stream, 4096)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(stream)
            stop.set()

    os.set_blocking(stream, False)
    loop.add_reader(stream, readable)
