"""Real clients (smtplib, swaks, curl) against a real `pochta serve` process; the stored message is
the sent one byte for byte, behind our two trace header fields."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from pochta.store.api import INBOX
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

from ..conftest import need
from .servers import RunningServer, pochta_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("smtp-e2e")
    with pochta_server(directory, services=("smtp",)) as running:
        assert running.cli("domain", "add", "example.test").returncode == 0
        for user in ("alice", "bob"):
            result = running.cli("user", "add", f"{user}@example.test", "--password-stdin", stdin="secret-pass\n")
            assert result.returncode == 0, result.stderr
        assert (
            running.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test").returncode == 0
        )
        yield running


def stored_messages(server: RunningServer, address: str) -> list[bytes]:
    async def read() -> list[bytes]:
        store = await SqliteStore.open(server.data_dir)
        blobs = FileBlobs(server.data_dir / "blobs", database=server.data_dir / DATABASE_NAME)
        try:
            account = await store.get_account(address)
            assert account is not None
            inbox = await store.get_mailbox(account.id, INBOX)
            assert inbox is not None
            return [await blobs.read(m.blob_id) for m in await store.messages(inbox.id)]
        finally:
            blobs.close()
            await store.close()

    return asyncio.run(read())


def body_after_trace(stored: bytes) -> bytes:
    """The stored octets without the fields we add: Return-Path, Received and our Authentication-Results."""
    assert stored.startswith(b"Return-Path: <")
    received = stored.index(b"\r\nReceived: ")
    end = _field_end(stored, received + 2)
    if stored.startswith(b"Authentication-Results: mx.example.test;", end):
        end = _field_end(stored, end)
    return stored[end:]


def _field_end(stored: bytes, start: int) -> int:
    end = start
    while True:  # a field runs over its folded continuation lines
        end = stored.index(b"\r\n", end) + 2
        if stored[end : end + 1] not in (b" ", b"\t"):
            return end


def test_smtplib_with_starttls_and_an_8bit_mime_message(server: RunningServer) -> None:
    message = EmailMessage()
    message["From"] = "Zoë <zoe@remote.test>"
    message["To"] = "alice@example.test"
    message["Subject"] = "Grüße"
    message.set_content("Hallo Alice,\n.\nein Punkt allein.\n", charset="utf-8", cte="8bit")
    message.add_attachment(bytes(range(256)) * 40, maintype="application", subtype="octet-stream", filename="x.bin")
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    before = len(stored_messages(server, "alice@example.test"))
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.starttls(context=context)
        refused = client.sendmail("zoe@remote.test", ["alice@example.test"], raw, mail_options=["BODY=8BITMIME"])
    assert refused == {}
    stored = stored_messages(server, "alice@example.test")[before:]
    assert len(stored) == 1
    assert body_after_trace(stored[0]) == raw
    assert b"with ESMTPS id" in stored[0]


def test_smtplib_errors_are_smtp_errors(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("x@remote.test", ["nobody@example.test", "x@elsewhere.test"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.recipients == {
            "nobody@example.test": (550, b"5.1.1 <nobody@example.test>: no such user here"),
            "x@elsewhere.test": (554, b"5.7.1 <x@elsewhere.test>: relay access denied"),
        }
        assert client.noop()[0] == 250


def test_swaks_to_an_alias_with_pipelining_and_tls(server: RunningServer, tmp_path: Path) -> None:
    need(shutil.which("swaks") is not None, "swaks is not installed (apt-get install swaks)")
    body = "From: sender@remote.test\r\nTo: team@example.test\r\nSubject: swaks\r\n\r\nfrom swaks\r\n"
    data = tmp_path / "message.eml"
    data.write_bytes(body.encode().removesuffix(b"\r\n"))  # swaks ends the content with its own CRLF
    result = subprocess.run(
        [
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(server.ports["smtp"]),
            "--tls",
            "--pipeline",
            "--from",
            "sender@remote.test",
            "--to",
            "team@example.test",
            "--data",
            f"@{data}",
            "--helo",
            "swaks.remote.test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 OK id=" in result.stdout
    for user in ("alice", "bob"):
        assert body_after_trace(stored_messages(server, f"{user}@example.test")[-1]) == body.encode()


def test_curl_sends_a_file(server: RunningServer, tmp_path: Path) -> None:
    need(shutil.which("curl") is not None, "curl is not installed (apt-get install curl)")
    body = b"From: curl@remote.test\r\nSubject: via curl\r\n\r\nsent by curl\r\n.dot line\r\n"
    data = tmp_path / "mail.txt"
    data.write_bytes(body)
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            f"smtp://127.0.0.1:{server.ports['smtp']}/curl.remote.test",
            "--mail-from",
            "curl@remote.test",
            "--mail-rcpt",
            "bob@example.test",
            "--upload-file",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert body_after_trace(stored_messages(server, "bob@example.test")[-1]) == body
