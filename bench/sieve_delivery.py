"""What users' Sieve scripts cost at delivery: MX throughput with no script, a filing script, and a
vacation script, against the same in-process server (durability on, 127.0.0.1).

Run by hand:  .venv/bin/python bench/sieve_delivery.py [--messages 2000] [--clients 8]
Prints messages/s per case and the ratio to the no-script baseline (the peer: the same server
without Sieve). Each case uses a fresh data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import uvloop

from pochta.app import Server
from pochta.config import from_mapping

SERVICES = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "managesieve", "http")
SCRIPTS = {
    "no script": None,
    "fileinto script": 'require ["fileinto", "mailbox"];\n'
    'if header :contains "List-Id" "dev" { fileinto :create "Lists/dev"; stop; }\n'
    'if header :contains "Subject" "invoice" { fileinto :create "Finance"; }\n',
    "vacation script": 'require "vacation"; vacation :days 7 :subject "Away" "I am away.";',
}


async def _client(port: int, count: int, index: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO bench.test\r\n")
    await reply()
    for n in range(count):
        # one sender per client: the vacation case answers each sender once, then only checks
        writer.write(f"MAIL FROM:<sender{index}@remote.test>\r\nRCPT TO:<bench@example.test>\r\nDATA\r\n".encode())
        for _ in range(3):
            await reply()
        body = (
            f"From: sender{index}@remote.test\r\nTo: bench@example.test\r\nSubject: message {n}\r\n"
            f"List-Id: <{'dev' if n % 2 else 'other'}.lists.test>\r\n\r\n" + "text line\r\n" * 100 + ".\r\n"
        )
        writer.write(body.encode())
        line = await reply()
        assert line.startswith(b"250"), line
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


async def _case(script: str | None, messages: int, clients: int, directory: Path) -> float:
    listen = {name: [] for name in SERVICES} | {"smtp": ["127.0.0.1:0"]}
    server = Server(
        from_mapping(
            {
                "hostname": "mx.example.test",
                "data_dir": str(directory),
                "listen": listen,
                "dns": {"nameservers": ["127.0.0.1:9"], "timeout": 0.5},
            }
        )
    )
    await server.start()
    try:
        store = server.store
        assert store is not None
        await store.add_domain("example.test")
        account = await store.add_account("bench@example.test", password_hash="x", scram=None)
        if script is not None:
            await store.put_sieve_script(account.id, "main", script)
            await store.activate_sieve_script(account.id, "main")
        port = server.ports("smtp")[0]
        start = time.perf_counter()
        await asyncio.gather(*(_client(port, messages // clients, i) for i in range(clients)))
        return (messages // clients * clients) / (time.perf_counter() - start)
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    baseline = 0.0
    for name, script in SCRIPTS.items():
        directory = Path(tempfile.mkdtemp(prefix="pochta-bench-"))
        try:
            rate = uvloop.run(_case(script, args.messages, args.clients, directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        baseline = baseline or rate
        print(f"{name:16s} {rate:8.0f} msg/s  ({rate / baseline:.2f} of no script)")


if __name__ == "__main__":
    main()
