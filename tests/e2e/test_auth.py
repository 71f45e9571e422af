"""One Pochta submits and signs, a second receives and checks: the receiver's Authentication-Results says
spf, dkim and dmarc pass. Two real `pochta serve` processes and a tests/dnsserver.py process publishing
the sender's SPF, DKIM (the keys `pochta dkim generate` printed) and DMARC records."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pochta.store.api import INBOX
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

from ..mailauth.table import to_zone
from .servers import free_ports, wait_for_port, write_config

TESTS = Path(__file__).resolve().parents[1]
PASSWORD = "auth-e2e-password"
pytestmark = pytest.mark.e2e


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "zone.json"
    path.write_text("{}")
    return path


@pytest.fixture
def nameserver(zone_file: Path) -> Iterator[str]:
    """A DNS server process that reads `zone_file` at every query."""
    with subprocess.Popen(
        [sys.executable, str(TESTS / "dnsserver.py"), str(zone_file)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            yield address
        finally:
            process.kill()
            process.stdout.close()


def _node(directory: Path, *, hostname: str, ports: dict[str, int], extra: str) -> Path:
    directory.mkdir()
    config = write_config(directory, ports, extra=extra)
    config.write_text(config.read_text().replace('hostname = "mx.example.test"', f'hostname = "{hostname}"'))
    return config


def _cli(config: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pochta", "--config", str(config), "serve"], stdout=subprocess.DEVNULL, stderr=stderr
        )
    wait_for_port(port, process=process)
    return process


async def _inbox(data: Path, address: str) -> list[bytes]:
    store = await SqliteStore.open(data, fsync=False)
    blobs = FileBlobs(data / "blobs", fsync=False, database=data / DATABASE_NAME)
    try:
        account = await store.get_account(address)
        assert account is not None
        mailbox = await store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        return [await blobs.read(message.blob_id) for message in await store.messages(mailbox.id)]
    finally:
        blobs.close()
        await store.close()


def test_mail_signed_by_one_pochta_passes_dkim_spf_and_dmarc_at_another(
    tmp_path: Path, zone_file: Path, nameserver: str
) -> None:
    receiver_port, submission_port = free_ports(2)
    dns = f'[dns]\nnameservers = ["{nameserver}"]\ntimeout = 2.0\n'
    receiver = _node(
        tmp_path / "remote",
        hostname="mx.remote.test",
        ports={"smtp": receiver_port},
        extra=f"{dns}[auth]\nenabled = true\n",
    )
    sender = _node(
        tmp_path / "sender",
        hostname="mx.sender.test",
        ports={"submissions": submission_port},
        extra=f"[outbound]\nport = {receiver_port}\n{dns}",
    )
    _cli(receiver, "domain", "add", "remote.test")
    _cli(receiver, "user", "add", "bob@remote.test", "--password-stdin", stdin=PASSWORD + "\n")
    _cli(sender, "domain", "add", "sender.test")
    _cli(sender, "user", "add", "alice@sender.test", "--password-stdin", stdin=PASSWORD + "\n")
    table: dict[str, dict[str, list[str]]] = {
        "remote.test.": {"MX": ["10 mx.remote.test."]},
        "mx.remote.test.": {"A": ["127.0.0.1"]},
        "sender.test.": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "_dmarc.sender.test.": {"TXT": ["v=DMARC1; p=reject"]},
    }
    for algorithm in ("rsa", "ed25519"):  # the RSA record is longer than one TXT string: several strings
        printed = _cli(sender, "dkim", "generate", "sender.test", "--algorithm", algorithm, "--selector", algorithm)
        match = re.fullmatch(r'(\S+) TXT "(.*)"\n', printed)
        assert match, printed
        table[match.group(1)] = {"TXT": [match.group(2)]}
    zone_file.write_text(json.dumps(to_zone(table)))

    remote = _serve(receiver, receiver_port, tmp_path / "receiver.log")
    try:
        process = _serve(sender, submission_port, tmp_path / "sender.log")
        try:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP_SSL("127.0.0.1", submission_port, context=context, timeout=30) as client:
                client.login("alice@sender.test", PASSWORD)
                client.sendmail(
                    "alice@sender.test",
                    ["bob@remote.test"],
                    "From: Alice <alice@sender.test>\r\nTo: bob@remote.test\r\nSubject: signed\r\n"
                    "Message-ID: <auth-e2e@sender.test>\r\n\r\nHello Bob.\r\n",
                )
            deadline = time.monotonic() + 30
            while not (received := asyncio.run(_inbox(tmp_path / "remote" / "data", "bob@remote.test"))):
                assert time.monotonic() < deadline, "the message did not arrive"
                time.sleep(0.2)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        remote.terminate()
        remote.wait(timeout=30)
    (stored,) = received
    headers = stored.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", headers)
    (results,) = [line for line in unfolded.split("\r\n") if line.startswith("Authentication-Results:")]
    assert results.startswith("Authentication-Results: mx.remote.test; spf=pass")
    assert "smtp.mailfrom=alice@sender.test" in results
    assert "dkim=pass header.d=sender.test header.s=rsa header.a=rsa-sha256" in results
    assert "dkim=pass header.d=sender.test header.s=ed25519 header.a=ed25519-sha256" in results
    assert "dmarc=pass (p=reject dis=none) header.from=sender.test" in results
