"""Archiving end to end against a real `pochta serve`: the scheduled retention task moves old mail and
mbsync sees ordinary changes; the journal and quota warnings for mail that came in over SMTP."""

from __future__ import annotations

import imaplib
import json
import mailbox as mbox_module
import shutil
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from ..conftest import need
from .servers import RunningServer, pochta_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
BOB = "bob@example.test"


@contextmanager
def _server(tmp_path: Path, *, interval: float) -> Iterator[RunningServer]:
    extra = f"[storage]\nfsync = false\n[retention]\ninterval = {interval}\nundelete_days = 30\n"
    with pochta_server(tmp_path, services=("smtp", "submissions", "imap"), extra=extra) as running:
        for args in (("domain", "add", "example.test"), ("user", "add", BOB, "--password-stdin")):
            result = running.cli(*args, stdin=PASSWORD + "\n")
            assert result.returncode == 0, result.stderr
        yield running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with _server(tmp_path, interval=1) as running:  # the retention task runs every second
        yield running


def _message(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Carol <carol@other.test>"
    message["To"] = BOB
    message["Subject"] = subject
    message.set_content(f"This is {subject}.")
    return message.as_bytes().replace(b"\n", b"\r\n")


def _imap(server: RunningServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    client.login(BOB, PASSWORD)
    return client


def _count(client: imaplib.IMAP4, mailbox: str) -> int:
    status, data = client.status(mailbox, "(MESSAGES)")
    assert status == "OK", data
    return int(data[0].split(b"MESSAGES ")[1].rstrip(b")"))  # type: ignore[union-attr]


def _wait(condition: object, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the retention task")


def _mbsync_config(tmp_path: Path, port: int) -> Path:
    local = tmp_path / "mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount pochta
Host 127.0.0.1
Port {port}
User {BOB}
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account pochta

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )
    return config


def _mbsync(config: Path) -> None:
    result = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def _subjects(folder: Path) -> list[str]:
    found = []
    for sub in ("cur", "new"):
        for path in sorted((folder / sub).iterdir()) if (folder / sub).is_dir() else []:
            line = next(line for line in path.read_bytes().splitlines() if line.startswith(b"Subject: "))
            found.append(line.removeprefix(b"Subject: ").decode())
    return sorted(found)


def test_mbsync_sees_archive_moves_as_ordinary_changes(server: RunningServer, tmp_path: Path) -> None:
    need(shutil.which("mbsync") is not None, "mbsync not installed (Debian package isync)")
    client = _imap(server)
    old = datetime.now(UTC) - timedelta(days=90)
    assert (
        client.append("INBOX", r"(\Seen)", imaplib.Time2Internaldate(old.timestamp()), _message("old one"))[0] == "OK"
    )
    assert client.append("INBOX", None, None, _message("new one"))[0] == "OK"
    config = _mbsync_config(tmp_path, server.ports["imap"])
    _mbsync(config)
    local = tmp_path / "mail"
    assert _subjects(local / "INBOX") == ["new one", "old one"]
    # the policy reaches the running server through the store; its task (every second here) applies it
    result = server.cli("retention", "set", BOB, "--archive-after", "30", "--per-year")
    assert result.returncode == 0, result.stderr
    _wait(lambda: _count(client, "INBOX") == 1)
    assert _count(client, f"Archive/{old.year}") == 1
    _mbsync(config)
    assert _subjects(local / "INBOX") == ["new one"]
    assert _subjects(local / "Archive" / str(old.year)) == ["old one"]
    (archived,) = (local / "Archive" / str(old.year) / "cur").iterdir()
    assert archived.name.endswith(",S")  # moved with its flags
    _mbsync(config)  # nothing new either way: no duplicates, nothing comes back
    assert _subjects(local / "INBOX") == ["new one"]
    assert _subjects(local / "Archive" / str(old.year)) == ["old one"]
    assert _count(client, "INBOX") == 1 and _count(client, f"Archive/{old.year}") == 1
    client.logout()


def test_expunged_mail_comes_back_with_restore(server: RunningServer) -> None:
    client = _imap(server)
    assert client.append("INBOX", None, None, _message("regretted"))[0] == "OK"
    client.select("INBOX")
    client.store("1", "+FLAGS", r"(\Deleted)")
    client.expunge()
    assert _count(client, "INBOX") == 0
    result = server.cli("restore", BOB)
    assert result.returncode == 0 and result.stdout == f"restored 1 messages to {BOB}\n", result.stderr
    client.noop()
    assert _count(client, "INBOX") == 1
    client.logout()


def test_journal_and_quota_warning_for_smtp_mail(server: RunningServer, tmp_path: Path) -> None:
    for args in (("journal", "enable", "example.test"), ("user", "quota", BOB, "--storage", "2K")):
        result = server.cli(*args)
        assert result.returncode == 0, result.stderr
    message = _message("for the record") + b"\r\n" + b"padding line\r\n" * 115  # ~2,000 octets with the trace
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as smtp:
        smtp.sendmail("carol@other.test", [BOB], message)
        # nearly full: a message that would not fit is refused at RCPT with 452 4.2.2 (RFC 3463: mailbox full)
        code, reply = smtp.docmd("MAIL FROM:<carol@other.test> SIZE=200")
        assert code == 250
        code, reply = smtp.docmd(f"RCPT TO:<{BOB}>")
        assert (code, reply.split()[0]) == (452, b"4.2.2")
    found = server.cli("journal", "search", "--to", BOB)
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 1 and "carol@other.test" in found.stdout
    out = tmp_path / "journal.mbox"
    assert server.cli("journal", "export", "--out", str(out)).returncode == 0
    box = mbox_module.mbox(out)
    (exported,) = list(box)
    box.close()
    assert exported["Subject"] == "for the record" and exported["X-Envelope-To"] == f"<{BOB}>"
    client = _imap(server)
    client.select("INBOX", readonly=True)

    def warned() -> bool:
        client.noop()
        status, data = client.search(None, "SUBJECT", '"full"')
        return status == "OK" and bool(data[0])

    _wait(warned)
    status, data = client.getquotaroot("INBOX")
    assert status == "OK"
    assert data[0] == [b'"INBOX" ""'] and data[1][0].startswith(b'"" (STORAGE ')  # type: ignore[index]
    client.logout()


def test_imap_append_over_the_warning_level_brings_the_warning(tmp_path: Path) -> None:
    with _server(tmp_path, interval=3600) as server:  # the task ran at start; the next run is an hour away
        _append_until_warned(server)


def _append_until_warned(server: RunningServer) -> None:
    result = server.cli("user", "quota", BOB, "--storage", "4K")
    assert result.returncode == 0, result.stderr
    client = _imap(server)
    big = _message("big") + b"\r\n" + b"x" * 3800 + b"\r\n"
    assert client.append("INBOX", None, None, big)[0] == "OK"
    client.select("INBOX", readonly=True)

    def warned() -> bool:
        client.noop()
        status, data = client.search(None, "SUBJECT", '"full"')
        return status == "OK" and bool(data[0])

    _wait(warned, timeout=10)  # right after the APPEND, not at the next hourly run
    assert client.append("INBOX", None, None, _message("more"))[0] == "NO"  # [OVERQUOTA]
    client.logout()


def test_submitted_mail_is_journaled_as_outgoing(server: RunningServer) -> None:
    assert server.cli("journal", "enable", "example.test").returncode == 0
    assert server.cli("alias", "add", "hidden@example.test", BOB).returncode == 0
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    message = _message("sent by bob").replace(b"From: Carol <carol@other.test>", f"From: <{BOB}>".encode())
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=context, timeout=30) as smtp:
        smtp.login(BOB, PASSWORD)
        assert smtp.sendmail(BOB, [BOB, "hidden@example.test"], message) == {}  # the second: a Bcc
    found = server.cli("journal", "search", "--from", BOB, "--json")
    assert found.returncode == 0, found.stderr
    (record,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert record["direction"] == "out" and record["to"] == [BOB, "hidden@example.test"]
