"""Archiving costs, each next to its peer measured in the same run:

1. local delivery of 10 KiB messages from 20 concurrent writers, fsync on: journal off, then journal on
   (the journal's zstd frame + fsync + index commit come before each store commit);
2. the retention task archiving N old INBOX messages (batches of 500) next to the same number of
   messages moved by plain `Mailboxes.move` calls of 500 (what an IMAP client's MOVE costs).

Run by hand:  .venv/bin/python bench/archive.py [--messages 4000] [--writers 20] [--size 10240]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop

from pochta.archive.journal import Journal
from pochta.archive.retention import RetentionTask
from pochta.config import Retention
from pochta.delivery import LocalCopy, LocalDelivery
from pochta.mail.envelope import Envelope, Recipient
from pochta.mail.mime import parse_message
from pochta.store.api import INBOX, NewMessage
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import SqliteStore


async def deliveries(data_dir: Path, *, messages: int, writers: int, size: int, journal: bool) -> float:
    store = await SqliteStore.open(data_dir)
    blobs = FileBlobs(data_dir / "blobs")
    await store.add_domain("example.test")
    account = await store.add_account("bench@example.test", password_hash="x", scram=None)
    delivery = LocalDelivery(store, queue=store)
    if journal:
        await store.set_journal_domain("example.test", retention_days=0)
        delivery.journal = Journal(store, blobs, data_dir / "journal", now=lambda: datetime.now(UTC))
    header = b"From: a@other.test\r\nTo: bench@example.test\r\nSubject: bench\r\n\r\n"
    filler = os.urandom(size).hex().encode()[:size]
    structure = parse_message(header + filler[: size - len(header)]).dumps()
    envelope = Envelope(mail_from="a@other.test", recipients=(Recipient(address="bench@example.test"),))
    copy = LocalCopy(account=account, recipients=envelope.recipients)
    per_writer = messages // writers

    async def writer(index: int) -> None:
        for n in range(per_writer):
            blob = blobs.create()
            blob.write(header + ((b"%d-%d " % (index, n)) + filler)[: size - len(header)])
            now = datetime.now(UTC)
            await delivery.accept(
                [copy], [], blob=blob, structure=structure, envelope=envelope, received=now, now=now, account_id=None
            )

    start = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    elapsed = time.perf_counter() - start
    if journal:
        total = sum(p.stat().st_size for p in (data_dir / "journal").rglob("*.zst"))
        print(f"  journal: {total / (per_writer * writers):,.0f} B per {size} B message on disk")
    await store.close()
    blobs.close()
    return per_writer * writers / elapsed


async def moves(data_dir: Path, *, messages: int, by_task: bool) -> float:
    store = await SqliteStore.open(data_dir)
    await store.add_domain("example.test")
    account = await store.add_account("bench@example.test", password_hash="x", scram=None)
    inbox = await store.get_mailbox(account.id, INBOX)
    archive = await store.get_mailbox(account.id, "Archive")
    assert inbox is not None and archive is not None
    old = datetime.now(UTC) - timedelta(days=400)
    for start in range(0, messages, 1000):
        await store.append(
            [
                NewMessage(
                    account_id=account.id,
                    mailbox_id=inbox.id,
                    blob_id=f"{n:064x}",
                    size=10240,
                    structure=b"{}",
                    internal_date=old,
                )
                for n in range(start, min(messages, start + 1000))
            ]
        )
    started = time.perf_counter()
    if by_task:
        task = RetentionTask(store, settings=Retention(archive_after_days=30, batch=500), now=lambda: datetime.now(UTC))
        report = await task.run_once()
        assert sum(step.count for step in report.steps) == messages
    else:
        uids = [m.uid for m in await store.messages(inbox.id)]
        for start in range(0, len(uids), 500):
            await store.move(inbox.id, uids[start : start + 500], archive.id)
    elapsed = time.perf_counter() - started
    await store.close()
    return messages / elapsed


async def run(messages: int, writers: int, size: int, root: Path) -> None:
    print(f"local delivery, {messages} x {size} B, {writers} writers, fsync on")
    off = await deliveries(root / "off", messages=messages, writers=writers, size=size, journal=False)
    print(f"  journal off: {off:,.0f} msg/s")
    on = await deliveries(root / "on", messages=messages, writers=writers, size=size, journal=True)
    print(f"  journal on:  {on:,.0f} msg/s ({on / off:.2f} of off)")
    count = messages * 5
    print(f"archiving {count} INBOX messages")
    plain = await moves(root / "move", messages=count, by_task=False)
    print(f"  plain MOVE calls of 500: {plain:,.0f} msg/s")
    task = await moves(root / "task", messages=count, by_task=True)
    print(f"  retention task:          {task:,.0f} msg/s ({task / plain:.2f} of plain)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--size", type=int, default=10 * 1024)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pochta-bench-archive-"))
    try:
        uvloop.run(run(args.messages, args.writers, args.size, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
