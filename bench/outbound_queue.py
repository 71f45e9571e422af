"""Helper for bench/outbound.sh: fill a stopped Pochta's outbound queue, then wait until it is empty.

    outbound_queue.py fill DATA_DIR COUNT SIZE DOMAIN   # COUNT messages of SIZE octets to user<N>@DOMAIN
    outbound_queue.py wait DATA_DIR [TIMEOUT]           # until the queue is empty; prints what is left if not

`fill` writes through the store's own `enqueue` (what submission does after its checks), one blob per
message, so the server finds a queue as submission would have left it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pochta.mail.envelope import Envelope, Recipient
from pochta.store.api import QueueItem
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

BATCH = 500


def _message(number: int, size: int, domain: str) -> bytes:
    head = (
        f"From: bench@example.test\r\nTo: user{number}@{domain}\r\nSubject: outbound bench {number}\r\n"
        f"Message-ID: <bench-{number}@example.test>\r\n\r\n"
    ).encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = (line * (size // len(line) + 1))[: max(size - len(head), 0)]
    return head + body


async def _fill(data: Path, count: int, size: int, domain: str) -> None:
    store = await SqliteStore.open(data, fsync=False)
    blobs = FileBlobs(data / "blobs", fsync=False)
    try:
        for start in range(0, count, BATCH):
            items = []
            for number in range(start, min(count, start + BATCH)):
                ref = await blobs.put(_message(number, size, domain))
                envelope = Envelope(
                    mail_from="bench@example.test", recipients=(Recipient(address=f"user{number}@{domain}"),)
                )
                items.append(
                    QueueItem(blob_id=ref.id, size=ref.size, envelope=envelope.dumps(), domain=domain, account_id=None)
                )
            await store.enqueue(items, now=datetime.now(UTC))
    finally:
        blobs.close()
        await store.close()


def _wait(data: Path, timeout: float) -> int:
    # A bare read-only count, not the store's queue_entries(): the poll must not take CPU from the server.
    with sqlite3.connect(f"file:{data / DATABASE_NAME}?mode=ro", uri=True) as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (left,) = conn.execute("SELECT count(*) FROM queue").fetchone()
            if not left:
                return 0
            time.sleep(0.05)
        errors = conn.execute("SELECT last_error, count(*) FROM queue GROUP BY last_error LIMIT 5").fetchall()
        print(f"{left} still queued; errors: {errors}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    match argv:
        case ["fill", data, count, size, domain]:
            asyncio.run(_fill(Path(data), int(count), int(size), domain))
            return 0
        case ["wait", data, *rest]:
            return _wait(Path(data), float(rest[0]) if rest else 600.0)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
