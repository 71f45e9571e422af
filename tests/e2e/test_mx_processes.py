"""`pochta serve` with [smtp] processes > 1: more processes accept on port 25, deliver into the one store,
wake the main process's IMAP IDLE, come back when they crash, and go when the main process goes."""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from .servers import RunningServer, free_ports, pochta_server, wait_for_port, write_config

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse"
_DELIVERED = re.compile(r"pochta\.smtpd\.mx\[(\d+)\] smtp delivered")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            found += [int(child) for child in (task / "children").read_text().split()]
    return sorted(found)


def _is_mx_process(pid: int) -> bool:
    try:
        return b"mx-process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def _accepts(pid: int) -> bool:
    """Whether MX process `pid` has put its inherited listening socket into its event loop's epoll set."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        fds = arguments[arguments.index(b"--fds") + 1].decode().split(",")
        watched = {
            line.split()[1]
            for info in Path(f"/proc/{pid}/fdinfo").iterdir()
            for line in info.read_text().splitlines()
            if line.startswith("tfd:")
        }
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return False
    return all(fd in watched for fd in fds)


def _mx_children(pid: int, count: int, *, timeout: float = 20) -> list[int]:
    """The MX processes of server `pid`, once there are `count` of them, each accepting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [child for child in _children(pid) if _is_mx_process(child)]
        if len(children) == count and all(_accepts(child) for child in children):
            return children
        time.sleep(0.05)
    raise AssertionError(f"expected {count} MX processes, found {_children(pid)}")


def _send(port: int, number: int) -> None:
    message = EmailMessage()
    message["From"] = "sender@remote.test"
    message["To"] = "alice@example.test"
    message["Subject"] = f"message {number}"
    message.set_content(f"body {number}\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(message)


def _inbox_count(server: RunningServer) -> int:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    client.login("alice@example.test", PASSWORD)
    status, data = client.select("INBOX", readonly=True)
    client.logout()
    assert status == "OK"
    return int(data[0] or 0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    extra = '[smtp]\nprocesses = 3\n[log]\nlevel = "INFO"\n'
    with pochta_server(tmp_path, services=("smtp", "imap"), extra=extra) as running:
        assert running.cli("domain", "add", "example.test").returncode == 0
        added = running.cli("user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        yield running


def test_mx_processes_share_port_25_and_every_message_is_stored_once(server: RunningServer) -> None:
    children = _mx_children(server.process.pid, 2)
    for number in range(10):
        _send(server.ports["smtp"], number)
    os.kill(server.process.pid, signal.SIGSTOP)  # the main process stops accepting: the MX processes go on
    try:
        for number in range(10, 20):
            _send(server.ports["smtp"], number)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert _inbox_count(server) == 20
    code, log = server.stop()
    assert code == 0, log
    deliverers = [int(pid) for pid in _DELIVERED.findall(log)]
    assert len(deliverers) == 20  # each message once
    assert set(deliverers[10:]) <= set(children)
    assert set(deliverers) <= {server.process.pid, *children}
    for child in children:  # and the children went with the main process
        assert not Path(f"/proc/{child}").exists() or _is_zombie(child)


def test_idle_in_the_main_process_hears_mail_an_mx_process_delivered(server: RunningServer) -> None:
    children = _mx_children(server.process.pid, 2)
    watcher = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    watcher.login("alice@example.test", PASSWORD)
    watcher.select("INBOX")
    # Stop the main process from accepting on port 25 (SIGSTOP): every message now goes to an MX process.
    # Its IMAP listener stops too, so the IDLE is started first, and the main process resumed to read it.
    tag = watcher._new_tag().decode()  # type: ignore[attr-defined]
    watcher.send(f"{tag} IDLE\r\n".encode())
    assert watcher.readline().startswith(b"+ ")
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        _send(server.ports["smtp"], 1)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert re.fullmatch(rb"\* 1 EXISTS\r\n", watcher.readline())
    assert re.fullmatch(rb"\* 1 RECENT\r\n", watcher.readline())  # an IMAP4rev1 session
    watcher.send(b"DONE\r\n")
    assert watcher.readline() == f"{tag} OK IDLE terminated\r\n".encode()
    watcher.logout()
    code, log = server.stop()
    assert code == 0, log
    assert next(int(pid) for pid in _DELIVERED.findall(log)) in children


def test_an_mx_process_that_dies_is_started_again(server: RunningServer) -> None:
    first, second = _mx_children(server.process.pid, 2)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while first in _children(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    # accepting, so it has its config: the main process can be stopped now
    (replacement,) = (child for child in _mx_children(server.process.pid, 2) if child != second)
    assert replacement != first
    stopped = (server.process.pid, second)
    for pid in stopped:  # only the replacement can take the next message
        os.kill(pid, signal.SIGSTOP)
    try:
        _send(server.ports["smtp"], 0)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    for number in range(1, 5):
        _send(server.ports["smtp"], number)
    assert _inbox_count(server) == 5
    code, log = server.stop()
    assert code == 0, log
    assert re.search(rf"MX process exited number=\d pid={first} code=-9; starting another in 1 s", log)
    assert next(int(pid) for pid in _DELIVERED.findall(log)) == replacement


def test_mx_processes_go_when_the_main_process_is_killed(tmp_path: Path) -> None:
    ports = dict(zip(("smtp",), free_ports(1), strict=True))
    config = write_config(tmp_path, ports, extra="[smtp]\nprocesses = 2\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "pochta", "--config", str(config), "serve"], stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(ports["smtp"], process=process)
        (child,) = _mx_children(process.pid, 1)
        process.kill()  # no chance to stop its children: they see their standard input end
        process.wait()
        deadline = time.monotonic() + 20
        while not _is_zombie(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _is_zombie(child)  # gone, or ended and waiting for init to reap it
    finally:
        if process.poll() is None:
            process.kill()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_service_manager_hears_ready_once_every_mx_process_accepts(tmp_path: Path) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    ports = dict(zip(("smtp",), free_ports(1), strict=True))
    config = write_config(tmp_path, ports, extra='[smtp]\nprocesses = 2\n[log]\nlevel = "INFO"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "pochta", "--config", str(config), "serve"],
        stderr=subprocess.PIPE,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")},
    )
    try:
        assert notify.recv(100) == b"READY=1"  # systemd's Type=notify (sd_notify(3))
        (child,) = _mx_children(process.pid, 1)
        process.send_signal(signal.SIGTERM)
        assert notify.recv(100) == b"STOPPING=1"
        _, stderr = process.communicate(timeout=60)
    finally:
        notify.close()
        if process.poll() is None:
            process.kill()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert f"MX process ready number=2 pid={child}" in log
    assert log.index("MX process ready") < log.index("pochta started")


def test_port_25_stops_listening_at_once_while_open_transactions_finish(tmp_path: Path) -> None:
    extra = "[smtp]\nprocesses = 2\n[limits]\nshutdown_grace = 20\n"
    with pochta_server(tmp_path, services=("smtp",), extra=extra) as server:
        assert server.cli("domain", "add", "example.test").returncode == 0
        added = server.cli("user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        _mx_children(server.process.pid, 1)
        os.kill(server.process.pid, signal.SIGSTOP)  # the session goes to the MX process, which outlives
        try:  # the main process's own listeners in the shutdown
            client = smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        client.ehlo("client.test")
        assert client.mail("sender@remote.test")[0] == 250
        assert client.rcpt("alice@example.test")[0] == 250  # a transaction is open: it may finish
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=5).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        assert refused, "port 25 still listened while shutting down"
        assert client.data(b"Subject: last\r\n\r\nfinished during shutdown\r\n")[0] == 250
        client.quit()
        code, log = server.stop()
        assert code == 0, log
