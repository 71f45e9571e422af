"""`pochta serve` as a real process: listeners, clear bind errors, graceful SIGTERM, local mode."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .servers import SERVICES, free_ports, pochta_server, wait_for_port, write_config


def test_serve_listens_on_every_configured_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    with pochta_server(tmp_path) as server:
        for name in SERVICES:
            with socket.create_connection(("127.0.0.1", server.ports[name]), timeout=5):
                pass
        started = time.monotonic()
        code, stderr = server.stop()
        assert code == 0, stderr
        assert time.monotonic() - started < 10
        assert "stopped" in stderr
    assert (tmp_path / "data" / "tls" / "cert.pem").exists()  # self-signed certificate made and kept


def test_a_port_that_cannot_be_bound_is_named(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        config = write_config(tmp_path, {"imap": port})
        result = subprocess.run(
            [sys.executable, "-m", "pochta", "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        blocker.close()
    assert result.returncode == 1
    assert f"imap: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_no_config_listens_on_the_default_ports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "POCHTA_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "pochta", "serve"], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        for port in (2525, 2587, 2465, 2143, 2993, 2110, 2995, 4190, 8080):
            wait_for_port(port, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert (tmp_path / "pochta-data" / "pochta.sqlite3").exists()


def test_localserve_creates_one_account_once(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    config = write_config(tmp_path, ports)

    def run_once() -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "pochta", "--config", str(config), "localserve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for_port(ports["imap"], process=process)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        return stdout.decode()

    first = run_once()
    assert "me@localhost" in first and "password:" in first
    password = next(line.split()[-1] for line in first.splitlines() if "password:" in line)
    second = run_once()
    assert password in second  # the same account, not a second one
    listed = subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), "user", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"me@localhost"' in listed.stdout and listed.stdout.count("address") == 1


def test_plain_serve_never_creates_accounts(tmp_path: Path) -> None:
    with pochta_server(tmp_path, services=("smtp",)) as server:
        result = server.cli("user", "list", "--json")
        assert result.returncode == 0 and result.stdout.strip() == "[]"
