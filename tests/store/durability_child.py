"""Child process for test_durability: appends in a loop and acknowledges each append that returned.

Usage: python durability_child.py DATA_DIR ACCOUNT_ID MAILBOX_ID
Prints `ack UID BLOB_ID` after every append returns; the parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from pochta.store.api import BlobWriter, NewMessage
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore


async def main(data_dir: Path, account_id: int, mailbox_id: int) -> None:
    store = await SqliteStore.open(data_dir)
    blobs = FileBlobs(data_dir / "blobs", database=data_dir / DATABASE_NAME)

    async def writer(worker: int) -> None:
        n = 0
        while True:
            n += 1
            body = os.urandom(8).hex().encode() * 64 * (1 + n % 20) * (20 if n % 7 == 0 else 1)
            message = b"Subject: w%d n%d\r\n\r\n" % (worker, n) + body
            carried: list[BlobWriter] = []
            if worker % 2:  # committed on its own (a file), then named by a row
                ref = await blobs.put(message)
            else:  # carried by the append: a row of its transaction when small, else a file made durable first
                blob = blobs.create()
                blob.write(message)
                ref = blob.ref
                carried.append(blob)
            (result,) = await store.append(
                [
                    NewMessage(
                        account_id=account_id,
                        mailbox_id=mailbox_id,
                        blob_id=ref.id,
                        size=ref.size,
                        structure=b"{}",
                        internal_date=datetime.now(UTC),
                    )
                ],
                blobs=carried,
            )
            sys.stdout.write(f"ack {result.uid} {ref.id}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(i) for i in range(4)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
