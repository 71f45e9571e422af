"""Starting real `pochta serve` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "managesieve", "http")


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_for_port(port: int, *, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    config: Path

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pochta", "--config", str(self.config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self, *, timeout: float = 30) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr.decode(errors="replace")


def write_config(directory: Path, ports: dict[str, int], *, extra: str = "") -> Path:
    listen = "\n".join(
        f'{name} = ["127.0.0.1:{ports[name]}"]' if name in ports else f"{name} = []" for name in SERVICES
    )
    if "[auth]" not in extra:  # SPF/DKIM/DMARC need a DNS server: tests/e2e/test_auth.py brings one
        extra += "\n[auth]\nenabled = false\n"
    config = directory / "pochta.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{directory / "data"}"\n[listen]\n{listen}\n{extra}\n')
    return config


@contextmanager
def pochta_server(directory: Path, *, services: tuple[str, ...] = SERVICES, extra: str = "") -> Iterator[RunningServer]:
    ports = dict(zip(services, free_ports(len(services)), strict=True))
    config = write_config(directory, ports, extra=extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "pochta", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = RunningServer(process=process, ports=ports, data_dir=directory / "data", config=config)
    try:
        for port in ports.values():
            wait_for_port(port, process=process)
        yield server
    finally:
        server.stop()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
