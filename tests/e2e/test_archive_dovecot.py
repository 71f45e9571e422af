"""Migrating from a real Dovecot: `pochta import-imap` against its IMAP, and `pochta import` of the Maildir++
it wrote (dovecot-keywords, ``,S=`` names, mtimes). Dovecot runs as a throwaway instance on free ports."""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME
from tests.archive.test_import_export import mailboxes
from tests.conftest import need

from .servers import free_ports, wait_for_port, write_config

MESSAGES = [
    ("INBOX", "(\\Seen)", "01-Feb-2021 10:00:00 +0000", b"From: a@remote.test\r\nSubject: one\r\n\r\nHello.\r\n"),
    ("INBOX", "(\\Flagged $Label1 work)", "02-Feb-2021 11:30:00 +0100", b"Subject: two\r\n\r\nFrom here\r\n"),
    ("Sent", "(\\Seen \\Answered)", "03-Feb-2021 12:00:00 +0000", b"Subject: sent\r\n\r\nsent mail\r\n"),
    ("Lists/Pochta", "(\\Draft)", "04-Feb-2021 13:00:00 -0500", "Subject: ß\r\n\r\nß\r\n".encode()),
]


@pytest.fixture
def dovecot() -> Iterator[tuple[int, Path]]:
    """(IMAP port, the instance's directory; alice's Maildir is mail/alice/Maildir in it)."""
    need(shutil.which("dovecot") is not None, "Dovecot is not installed (apt-get install dovecot-imapd)")
    need(os.geteuid() == 0, "a throwaway Dovecot needs root (it runs mail processes as nobody)")
    run = Path(tempfile.mkdtemp(prefix="pochta-dovecot-"))
    run.chmod(0o755)
    (port,) = free_ports(1)
    for sub in ("base", "state", "mail"):
        (run / sub).mkdir()
    shutil.chown(run / "mail", "nobody", "nogroup")
    (run / "users").write_text("alice:{PLAIN}alicepw\n")
    config = run / "dovecot.conf"
    config.write_text(
        f"""instance_name = pochta-test-{port}
base_dir = {run}/base
state_dir = {run}/state
protocols = imap
listen = 127.0.0.1
log_path = {run}/dovecot.log
ssl = no
disable_plaintext_auth = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {run}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={run}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    )
    # no pipes: the daemon would keep them open and a captured run would wait for it forever
    subprocess.run(["dovecot", "-c", str(config)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port, run
    finally:
        subprocess.run(["dovecot", "-c", str(config), "stop"], check=False, stdout=subprocess.DEVNULL)
        for _ in range(50):
            if not (run / "base" / "master.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(run, ignore_errors=True)


def _fill(port: int) -> dict[str, list[tuple[bytes, frozenset[str], datetime]]]:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.login("alice", "alicepw")
    imap.create("Lists/Pochta")
    for mailbox, flags, date, content in MESSAGES:
        assert imap.append(mailbox, flags, f'"{date}"', content)[0] == "OK"
    found = {}
    for name in ("INBOX", "Sent", "Lists/Pochta"):
        imap.select(name, readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
        items = []
        for item in data:
            if isinstance(item, tuple):
                stamp = imaplib.Internaldate2tuple(item[0])
                assert stamp is not None
                flags = frozenset(f.decode() for f in imaplib.ParseFlags(item[0])) - {"\\Recent"}
                items.append((item[1], flags, datetime.fromtimestamp(time.mktime(stamp), UTC)))
        found[name] = items
    imap.logout()
    return found


def _pochta(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pochta", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def _stored(data: Path, address: str) -> dict[str, list[tuple[bytes, frozenset[str], datetime]]]:
    blobs = FileBlobs(data / "blobs", fsync=False, database=data / DATABASE_NAME)
    try:
        return {
            name: [(blobs.read_sync(m.blob_id), m.flags, m.internal_date) for m in messages]
            for name, messages in mailboxes(data, address).items()
        }
    finally:
        blobs.close()


def test_an_account_migrates_from_dovecot_over_imap_and_from_its_maildir(
    dovecot: tuple[int, Path], tmp_path: Path
) -> None:
    port, run = dovecot
    expected = _fill(port)
    config = write_config(tmp_path, {})
    assert _pochta(config, "domain", "add", "example.test").returncode == 0
    for user in ("imap", "disk"):
        added = _pochta(config, "user", "add", f"{user}@example.test", "--password-stdin", stdin="a-long-password\n")
        assert added.returncode == 0, added.stderr

    result = _pochta(
        config,
        "import-imap", "imap@example.test", "--host", "127.0.0.1", "--port", str(port), "--user", "alice",
        "--security", "none", "--password-stdin",
        stdin="alicepw\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "imported 4 messages" in result.stdout
    assert _stored(tmp_path / "data", "imap@example.test") == expected

    # Dovecot's own Maildir++ on disk: LF line ends (Dovecot saves without CR), keywords in dovecot-keywords
    maildir = run / "mail" / "alice" / "Maildir"
    result = _pochta(config, "import", "disk@example.test", str(maildir))
    assert result.returncode == 0, result.stderr
    from_disk = _stored(tmp_path / "data", "disk@example.test")
    assert from_disk == {
        name: [(content.replace(b"\r\n", b"\n"), flags, date) for content, flags, date in items]
        for name, items in expected.items()
    }
