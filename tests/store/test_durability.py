"""Crash safety: a process appending in a loop is killed with SIGKILL at random moments, 20 times; every
append that returned is intact after reopening, and no partial blob is ever visible (blobs committed on
their own as files, and blobs carried by the append: small ones as rows of its transaction, large ones as
files made durable first)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pochta.store.api import INBOX
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

CHILD = Path(__file__).with_name("durability_child.py")


async def test_sigkill_mid_append_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await SqliteStore.open(data_dir)
    await store.add_domain("example.test")
    account = await store.add_account("a@example.test", password_hash="h", scram=None)
    inbox = await store.get_mailbox(account.id, INBOX)
    assert inbox is not None
    await store.close()

    acked: dict[int, str] = {}
    rng = random.Random(20261127)
    for _ in range(20):
        with subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), str(account.id), str(inbox.id)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as child:
            assert child.stdout is not None
            first = child.stdout.readline()  # wait until it is appending, then kill at a random moment
            time.sleep(rng.uniform(0.0, 0.3))
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()
        for line in (first + rest).decode().splitlines():
            if line.startswith("ack "):  # a torn last line (no newline yet) was never an acknowledgement
                _, uid, blob_id = line.split()
                acked[int(uid)] = blob_id

        reopened = await SqliteStore.open(data_dir)
        for stray in (data_dir / "blobs" / "tmp").rglob("*.tmp"):  # as if the restart came an hour later
            os.utime(stray, (time.time() - 7200, time.time() - 7200))
        blobs = FileBlobs(
            data_dir / "blobs", database=data_dir / DATABASE_NAME
        )  # cleans temp files an hour old, as a restart does
        stored = {m.uid: m for m in await reopened.messages(inbox.id)}
        for uid, blob_id in acked.items():
            assert uid in stored and stored[uid].blob_id == blob_id
            data = await blobs.read(blob_id)
            assert hashlib.sha256(data).hexdigest() == blob_id and len(data) == stored[uid].size
        uids = sorted(stored)
        assert uids == list(range(1, len(uids) + 1))  # no gaps, no duplicates
        mailbox = await reopened.get_mailbox(account.id, INBOX)
        assert mailbox is not None and mailbox.messages == len(uids)
        await reopened.close()
        blobs.close()
        for path in (data_dir / "blobs").glob("??/*"):  # every visible blob is whole
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
        with sqlite3.connect(data_dir / DATABASE_NAME) as conn:  # the small ones kept as rows too
            for blob_id, content in conn.execute("SELECT id, data FROM blobs"):
                assert hashlib.sha256(content).hexdigest() == blob_id
        assert [p for p in (data_dir / "blobs" / "tmp").rglob("*") if p.is_file()] == []
    assert len(acked) > 20
