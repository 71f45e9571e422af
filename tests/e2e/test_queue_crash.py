"""The sending server is killed with SIGKILL mid-delivery, again and again; every queued message must
still reach the remote exactly once, or come back as a bounce.

Two real `pochta serve` processes: the sender (submission on 465, `[outbound] port` = the receiver's MX
port, `[dns] nameservers` = a tests/dnsserver.py process with an MX for remote.test → 127.0.0.1) and
the receiver (an MX holding bob@remote.test's INBOX). The messages are submitted while the receiver is
down, so the first attempt of each fails and the queue holds them all; then the receiver starts, every
entry is made due (what `pochta queue retry ID` does) and the sender is killed at random moments while
it delivers, and restarted. `[outbound] lease_seconds = 1` lets a restarted sender take over its dead
predecessor's entries after a second instead of 15 minutes.

Telling a duplicate from a loss: every message carries its number in the Subject. After each kill the
test notes how many messages the receiver holds, which splits the receiver's INBOX into the epochs of
the sender's lives. A message received twice across a kill is the SMTP duplicate window (RFC 5321
§6.1 accepts it: the remote said 250 and the sender died before recording it); twice within one epoch
is a bug in the queue, and fails the test. A number received zero times and not bounced is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest

from pochta.store.api import INBOX
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

from .servers import free_ports, wait_for_port, write_config

TESTS = Path(__file__).resolve().parents[1]
MESSAGES = 80
KILLS = 8
PASSWORD = "crash-test-password"


@pytest.fixture
def nameserver(tmp_path: Path) -> Iterator[str]:
    zone = tmp_path / "zone.json"
    zone.write_text(
        json.dumps({"remote.test.": {"MX": ["10 mx.remote.test."]}, "mx.remote.test.": {"A": ["127.0.0.1"]}})
    )
    with subprocess.Popen(
        [sys.executable, str(TESTS / "dnsserver.py"), str(zone)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            yield address
        finally:
            process.kill()
            process.stdout.close()


def _configure(directory: Path, *, hostname: str, ports: dict[str, int], extra: str = "") -> Path:
    directory.mkdir()
    config = write_config(directory, ports, extra=extra)
    config.write_text(config.read_text().replace('hostname = "mx.example.test"', f'hostname = "{hostname}"'))
    return config


def _cli(config: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pochta", "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    wait_for_port(port, process=process)
    return process


def _stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _submit(port: int, count: int) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP_SSL("127.0.0.1", port, context=context, timeout=30) as client:
        client.login("alice@example.test", PASSWORD)
        for number in range(count):
            content = (
                f"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: crash {number}\r\n"
                f"Message-ID: <crash-{number}@example.test>\r\n\r\nMessage {number}.\r\n"
            )
            client.sendmail("alice@example.test", ["bob@remote.test"], content)


async def _subjects(data: Path, address: str) -> list[str]:
    """The Subjects in `address`'s INBOX, in the order they arrived (uid order)."""
    store = await SqliteStore.open(data, fsync=False)
    blobs = FileBlobs(data / "blobs", fsync=False, database=data / DATABASE_NAME)
    try:
        account = await store.get_account(address)
        assert account is not None
        mailbox = await store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        messages = sorted(await store.messages(mailbox.id), key=lambda m: m.uid)
        return [str(message_from_bytes(await blobs.read(m.blob_id))["Subject"]) for m in messages]
    finally:
        blobs.close()
        await store.close()


async def _queue_ids(data: Path) -> list[int]:
    store = await SqliteStore.open(data, fsync=False)
    try:
        return [entry.id for entry in await store.queue_entries()]
    finally:
        await store.close()


async def _make_due(data: Path) -> int:
    """What `pochta queue retry ID` does, for every entry."""
    store = await SqliteStore.open(data, fsync=False)
    try:
        entries = await store.queue_entries()
        for entry in entries:
            await store.retry_now(entry.id, now=entry.created)
        return len(entries)
    finally:
        await store.close()


def _wait(condition: object, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_sigkill_mid_delivery_loses_nothing_and_duplicates_only_across_a_kill(tmp_path: Path, nameserver: str) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    chance = random.Random(seed)
    receiver_port, submission_port = free_ports(2)
    receiver = _configure(tmp_path / "remote", hostname="mx.remote.test", ports={"smtp": receiver_port})
    sender = _configure(
        tmp_path / "sender",
        hostname="mx.example.test",
        ports={"submissions": submission_port},
        extra=(
            f'[outbound]\nport = {receiver_port}\nlease_seconds = 1.0\n[dns]\nnameservers = ["{nameserver}"]\n'
            "timeout = 2.0\n"
        ),
    )
    _cli(receiver, "domain", "add", "remote.test")
    _cli(receiver, "user", "add", "bob@remote.test", "--password-stdin", stdin=PASSWORD + "\n")
    _cli(sender, "domain", "add", "example.test")
    _cli(sender, "user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD + "\n")
    sender_data, receiver_data = tmp_path / "sender" / "data", tmp_path / "remote" / "data"
    log = tmp_path / "sender.log"

    # queue them all while the remote is down: every first attempt fails and is retried in minutes
    process = _start(sender, submission_port, log)
    try:
        _submit(submission_port, MESSAGES)
        _wait(lambda: len(asyncio.run(_queue_ids(sender_data))) == MESSAGES, seconds=10)
    finally:
        _stop(process)
    assert asyncio.run(_make_due(sender_data)) == MESSAGES

    remote = _start(receiver, receiver_port, tmp_path / "receiver.log")
    try:
        boundaries: list[int] = []  # the receiver's message count when each sender life ended
        for _ in range(KILLS):
            process = _start(sender, submission_port, log)
            time.sleep(chance.uniform(0.05, 0.4))
            _stop(process, kill=True)
            time.sleep(0.2)  # a DATA the receiver had when the sender died is stored by now
            boundaries.append(len(asyncio.run(_subjects(receiver_data, "bob@remote.test"))))
        process = _start(sender, submission_port, log)
        try:
            _wait(lambda: not asyncio.run(_queue_ids(sender_data)), seconds=25)
        finally:
            _stop(process)
    finally:
        _stop(remote)

    received = asyncio.run(_subjects(receiver_data, "bob@remote.test"))
    bounced = asyncio.run(_subjects(sender_data, "alice@example.test"))
    counts = Counter(received)
    wanted = [f"crash {n}" for n in range(MESSAGES)]
    lost = [s for s in wanted if counts[s] == 0]
    duplicated = {s: n for s, n in counts.items() if n > 1}
    epochs: dict[str, list[int]] = {}
    for position, subject in enumerate(received):
        epochs.setdefault(subject, []).append(sum(1 for b in boundaries if position >= b))
    within_one_life = {s: e for s, e in epochs.items() if len(e) != len(set(e))}
    print(
        f"crash loop seed={seed}: kills={KILLS} delivered={len(counts)} of {MESSAGES}"
        f" duplicates={sum(duplicated.values()) - len(duplicated)} lost={len(lost)} bounced={len(bounced)}"
        f" receiver count at each kill={boundaries}"
    )
    assert set(counts) <= set(wanted)
    assert not lost and not bounced, f"lost {lost}, bounced {bounced} (seed {seed})"
    assert not within_one_life, f"sent twice by one sender process: {within_one_life} (seed {seed})"
