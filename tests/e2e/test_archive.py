"""Archive commands against running `pochta serve` processes: a backup under SMTP load, and an account
migrated over IMAP (imaplib against a second Pochta, plain, STARTTLS and implicit TLS)."""

from __future__ import annotations

import imaplib
import smtplib
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME
from tests.archive.test_import_export import mailboxes

from .servers import RunningServer, pochta_server, write_config


def _setup(server: RunningServer, address: str) -> None:
    assert server.cli("domain", "add", address.partition("@")[2]).returncode == 0
    added = server.cli("user", "add", address, "--password-stdin", stdin="secret-pass\n")
    assert added.returncode == 0, added.stderr


class Load:
    """Threads sending mail over SMTP as fast as the server takes it, noting when each got its 250."""

    def __init__(self, port: int, rcpt: str, *, threads: int = 3) -> None:
        self._port = port
        self._rcpt = rcpt
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.acknowledged: list[tuple[float, str]] = []
        self._threads = [threading.Thread(target=self._send, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _send(self, number: int) -> None:
        with smtplib.SMTP("127.0.0.1", self._port, timeout=30) as smtp:
            sequence = 0
            while not self._stop.is_set():
                tag = f"load-{number}-{sequence}"
                body = f"From: s@remote.test\r\nSubject: {tag}\r\n\r\n" + "filler line\r\n" * (sequence % 50)
                smtp.sendmail("s@remote.test", [self._rcpt], body.encode())
                with self._lock:
                    self.acknowledged.append((time.monotonic(), tag))
                sequence += 1

    def before(self, moment: float) -> set[str]:
        with self._lock:
            return {tag for at, tag in self.acknowledged if at < moment}


def _subjects(data: Path, address: str) -> set[str]:
    blobs = FileBlobs(data / "blobs", fsync=False, database=data / DATABASE_NAME)
    try:
        found = set()
        for messages in mailboxes(data, address).values():
            for message in messages:
                content = blobs.read_sync(message.blob_id)
                found.add(content.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode())
        return found
    finally:
        blobs.close()


def test_a_backup_under_smtp_load_restores_every_message_acknowledged_before_it(tmp_path: Path) -> None:
    for name in ("live", "restored"):
        (tmp_path / name).mkdir()
    # WARNING: one INFO line per message would fill the stderr pipe the harness reads only at the end
    with pochta_server(tmp_path / "live", services=("smtp",), extra='[log]\nlevel = "WARNING"') as server:
        _setup(server, "alice@example.test")
        with Load(server.ports["smtp"], "alice@example.test") as load:
            while len(load.before(time.monotonic())) < 100:
                time.sleep(0.05)
            started = time.monotonic()
            backup = server.cli("backup", str(tmp_path / "backup"))
            finished = time.monotonic()
            while len(load.before(time.monotonic())) < len(load.before(finished)) + 50:
                time.sleep(0.05)  # the load went on after the backup too
        assert backup.returncode == 0, backup.stderr
        acknowledged_before = load.before(started)
        acknowledged_after = load.before(time.monotonic()) - load.before(finished)

    restored = tmp_path / "restored"
    config = write_config(restored, {})
    result = subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), "restore-backup", str(tmp_path / "backup")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    in_backup = _subjects(restored / "data", "alice@example.test")
    assert acknowledged_before <= in_backup  # every 250 given before the backup began is in it
    assert not in_backup & acknowledged_after  # and nothing acknowledged after it ended
    verify = subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), "verify"], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stderr


REMOTE_MESSAGES = [
    (b"From: a@remote.test\r\nSubject: first\r\n\r\nHello.\r\n", "INBOX", "(\\Seen)", "01-Feb-2021 10:00:00 +0000"),
    (b"Subject: no final newline\r\n\r\nbody", "INBOX", "(\\Flagged $Work)", "02-Feb-2021 11:30:00 +0100"),
    (b"Subject: sent\r\n\r\nsent mail\r\n", "Sent", "(\\Seen \\Answered)", "03-Feb-2021 12:00:00 +0000"),
    ("Subject: deep\r\n\r\nß\r\n".encode(), "Lists/Пример", "()", "04-Feb-2021 13:00:00 -0500"),
]


def _remote_state(port: int) -> dict[str, list[tuple[bytes, frozenset[str], datetime]]]:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.login("remote@example.test", "secret-pass")
    found = {}
    for name in ("INBOX", "Sent", "Lists/Пример"):
        encoded = name.replace("Пример", "&BB8EQAQ4BDwENQRA-")
        assert imap.select(f'"{encoded}"', readonly=True)[0] == "OK"
        _, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
        items = []
        for item in data:
            if isinstance(item, tuple):
                flags = imaplib.ParseFlags(item[0])
                date = imaplib.Internaldate2tuple(item[0])
                assert date is not None
                items.append(
                    (
                        item[1],
                        frozenset(f.decode() for f in flags) - {"\\Recent"},
                        datetime.fromtimestamp(time.mktime(date), UTC),
                    )
                )
        found[name] = items
    imap.logout()
    return found


def _append(port: int, message: tuple[bytes, str, str, str]) -> None:
    content, mailbox, flags, date = message
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.login("remote@example.test", "secret-pass")
    encoded = mailbox.replace("Пример", "&BB8EQAQ4BDwENQRA-")
    imap.create(f'"{encoded}"')
    status, _ = imap.append(f'"{encoded}"', flags, f'"{date}"', content)
    assert status == "OK"
    imap.logout()


def _import_imap(config: Path, port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pochta",
            "--config",
            str(config),
            "import-imap",
            "local@example.test",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--user",
            "remote@example.test",
            "--password-stdin",
            *options,
        ],
        input="secret-pass\n",
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_imap_migrates_folders_flags_dates_and_octets_and_resumes(tmp_path: Path) -> None:
    for name in ("remote", "local"):
        (tmp_path / name).mkdir()
    with pochta_server(tmp_path / "remote", services=("imap", "imaps")) as remote:
        _setup(remote, "remote@example.test")
        for message in REMOTE_MESSAGES:
            _append(remote.ports["imap"], message)
        local = tmp_path / "local"
        config = write_config(local, {})
        for args in (("domain", "add", "example.test"), ("user", "add", "local@example.test", "--password-stdin")):
            subprocess.run(
                [sys.executable, "-m", "pochta", "--config", str(config), *args],
                input="secret-pass\n",
                check=True,
                capture_output=True,
                text=True,
            )

        result = _import_imap(config, remote.ports["imap"], "--security", "starttls", "--insecure")
        assert result.returncode == 0, result.stderr
        assert "imported 4 messages" in result.stdout and "created Lists, Lists/Пример" in result.stdout

        expected = _remote_state(remote.ports["imap"])
        got = mailboxes(local / "data", "local@example.test")
        blobs = FileBlobs(local / "data" / "blobs", fsync=False, database=local / "data" / DATABASE_NAME)
        try:
            for name, items in expected.items():
                assert [(blobs.read_sync(m.blob_id), m.flags, m.internal_date) for m in got[name]] == items
        finally:
            blobs.close()

        # a second run over implicit TLS fetches only what arrived since
        late = (b"Subject: late\r\n\r\nlate\r\n", "INBOX", "()", "05-Feb-2021 10:00:00 +0000")
        _append(remote.ports["imap"], late)
        result = _import_imap(config, remote.ports["imaps"], "--security", "tls", "--insecure")
        assert result.returncode == 0, result.stderr
        assert "imported 1 messages" in result.stdout and "4 imported by an earlier run" in result.stdout
        assert len(mailboxes(local / "data", "local@example.test")["INBOX"]) == 3

        refused = _import_imap(config, remote.ports["imaps"], "--security", "tls")  # self-signed: not trusted
        assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "pochta",
                "--config",
                str(config),
                "import-imap",
                "local@example.test",
                "--host",
                "127.0.0.1",
                "--port",
                str(remote.ports["imap"]),
                "--user",
                "remote@example.test",
                "--security",
                "none",
                "--password-stdin",
            ],
            input="wrong\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode == 1 and bad.stderr.startswith("pochta: 127.0.0.1:")
