"""Virus scans per second: 200 sample messages through Pochta's clamd client (filters/clamav.py).

Run by hand:  .venv/bin/python bench/clamav_scan.py [--messages 200] [--rounds 5] [--clamd unix:/path]
Without --clamd it starts a private clamd the way the tests do (Debian clamav-daemon, EICAR-only database).
The peer is the same INSTREAM exchange over a plain blocking socket (what /work/shared/peers measured,
~690 msg/s): the difference is our client's cost. Also prints 4 scans in flight (clamd's threads).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' clamd starter

from tests.filters.clamd import ClamdProcess, find_clamd  # noqa: E402

from pochta.config import parse_socket_address  # noqa: E402
from pochta.filters.clamav import Clamd, Status, instream, parse_reply  # noqa: E402

MIME = ROOT.parent / "shared" / "data" / "mime"


def samples(count: int) -> list[bytes]:
    files = sorted(p for p in MIME.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no sample messages under {MIME}")
    step = max(1, len(files) // count)
    return [files[i].read_bytes() for i in range(0, len(files), step)][:count]


def plain_socket_scan(address: str | tuple[str, int], content: bytes) -> bytes:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        sock.sendall(b"".join(instream(content)))
        reply = b""
        while b"\0" not in reply and (data := sock.recv(4096)):
            reply += data
    return reply


async def ours(client: Clamd, messages: list[bytes], *, in_flight: int) -> float:
    queue = list(reversed(messages))
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            result = await client.scan(queue.pop())
            assert result.status is Status.CLEAN, result

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(messages) / (time.perf_counter() - started)


def peer(address: str | tuple[str, int], messages: list[bytes]) -> float:
    started = time.perf_counter()
    for content in messages:
        assert parse_reply(plain_socket_scan(address, content)).status is Status.CLEAN
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clamd", default="", help='"unix:/path" or "tcp:host:port" of a running clamd')
    args = parser.parse_args()
    messages = samples(args.messages)
    print(f"{len(messages)} messages, {sum(map(len, messages)) / len(messages) / 1024:.1f} KiB average")
    process = None
    if args.clamd:
        address = parse_socket_address(args.clamd)
    else:
        binary = find_clamd()
        if binary is None:
            raise SystemExit("clamd is not installed (apt-get install clamav-daemon)")
        process = ClamdProcess.start(binary, Path(tempfile.mkdtemp(prefix="pochta-bench-clamd-")))
        address = str(process.socket_path)
    version = process.command(b"zVERSION\0").rstrip(b"\0").decode() if process else "running"
    print(f"clamd {address}: {version}")
    client = Clamd(address, timeout=30, connect_timeout=5)
    try:
        peer(address, messages)  # warm up clamd's caches
        rows = []
        for round_ in range(1, args.rounds + 1):
            plain = peer(address, messages)
            sequential = uvloop.run(ours(client, messages, in_flight=1))
            parallel = uvloop.run(ours(client, messages, in_flight=4))
            rows.append((plain, sequential, parallel))
            print(
                f"round {round_}: plain socket {plain:6.0f} msg/s | pochta {sequential:6.0f} msg/s "
                f"({sequential / plain:.2f}x) | pochta, 4 in flight {parallel:6.0f} msg/s"
            )
        plain, sequential, parallel = (statistics.median(column) for column in zip(*rows, strict=True))
        print(
            f"median:  plain socket {plain:6.0f} msg/s | pochta {sequential:6.0f} msg/s | 4 in flight {parallel:6.0f}"
        )
    finally:
        if process is not None:
            process.stop()


if __name__ == "__main__":
    main()
