"""Store append throughput: 10 KiB messages from 20 concurrent writers, durability on (fsync).

Run by hand:  .venv/bin/python bench/store_append.py [--messages 5000] [--writers 20] [--size 10240]
Prints appends/s and fsyncs per message (blob file + directory fsyncs counted by the blob store, plus one
WAL fsync per group commit). Small blobs are rows of the group commit, as the server keeps them;
--files keeps every blob as a file (the layout before blobs moved into the database), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from pochta.store.api import INBOX, NewMessage
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore


async def run(messages: int, writers: int, size: int, data_dir: Path, *, is_files: bool) -> None:
    store = await SqliteStore.open(data_dir)
    blobs = FileBlobs(data_dir / "blobs", database=None if is_files else data_dir / DATABASE_NAME)
    await store.add_domain("example.test")
    account = await store.add_account("bench@example.test", password_hash="x", scram=None)
    inbox = await store.get_mailbox(account.id, INBOX)
    assert inbox is not None
    per_writer = messages // writers
    header = b"From: a@example.test\r\nTo: bench@example.test\r\nSubject: bench\r\n\r\n"
    filler = os.urandom(size).hex().encode()[:size]  # made once: the bench measures the store, not urandom

    async def writer(index: int) -> None:
        for n in range(per_writer):
            body = (b"%d-%d " % (index, n)) + filler
            writer = blobs.create()
            writer.write(header + body[: size - len(header)])
            ref = writer.ref
            await store.append(
                [
                    NewMessage(
                        account_id=account.id,
                        mailbox_id=inbox.id,
                        blob_id=ref.id,
                        size=ref.size,
                        structure=b"{}",
                        internal_date=datetime.now(UTC),
                    )
                ],
                blobs=[writer],  # made durable by the store's writer, in the same group commit
            )

    engine = store._db
    commits0 = engine.commits
    start = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    elapsed = time.perf_counter() - start
    total = per_writer * writers
    commits = engine.commits - commits0
    where = "files" if is_files else f"rows up to {blobs.inline_limit} B, files above"
    print(f"appends: {total} x {size} B, {writers} writers, fsync on, blobs as {where}")
    print(f"appends/s: {total / elapsed:,.0f}  ({elapsed:.2f} s)")
    print(f"group commits: {commits} ({total / max(commits, 1):.1f} appends per commit)")
    print(
        f"fsyncs per message: {(blobs.fsyncs + commits) / total:.2f} "
        f"(blob file+dir {blobs.fsyncs / total:.2f}, WAL {commits / total:.2f})"
    )
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the data (default: a temp dir)")
    parser.add_argument("--files", action="store_true", help="keep every blob as a file")
    args = parser.parse_args()
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="pochta-bench-"))
    try:
        uvloop.run(run(args.messages, args.writers, args.size, data_dir, is_files=args.files))
    finally:
        if args.dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
