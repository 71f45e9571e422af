"""Python's imaplib against the IMAP service over real sockets and TLS (the service runs in-process on
its own event loop thread until app.py wires it into `pochta serve`)."""

from __future__ import annotations

import asyncio
import imaplib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ..conftest import need
from ..imapd.harness import PASSWORD, client_tls, running_imap

pytestmark = pytest.mark.e2e


class _Server:
    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ports: dict[str, int] = {}
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_imap(self._tmp_path) as imap:
            for user in ("alice@example.test", "bob@example.test"):
                await imap.add_user(user)
            self.ports = {"imap": imap.port("imap"), "imaps": imap.port("imaps")}
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> _Server:
        self._thread.start()
        assert self._ready.wait(30), "IMAP service did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    with _Server(tmp_path_factory.mktemp("imap-e2e")) as running:
        yield running


def _message(subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Carol <carol@example.test>"
    message["To"] = "alice@example.test"
    message["Subject"] = subject
    message.set_content(body)
    message.add_attachment(b"\x00\x01binary" * 50, maintype="application", subtype="octet-stream", filename="a.bin")
    return message.as_bytes().replace(b"\n", b"\r\n")


def _login(server: _Server, *, tls: bool = False) -> imaplib.IMAP4:
    if tls:
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    else:
        client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    client.login("alice@example.test", PASSWORD)
    return client


def test_imaplib_mail_round_trip(server: _Server) -> None:
    client = _login(server)
    status, folders = client.list()
    assert status == "OK"
    assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in folders
    assert client.create("Receipts")[0] == "OK"
    original = _message("lunch", "Soup at noon.")
    status, data = client.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(time.time()), original)
    assert status == "OK" and b"APPENDUID" in data[0]
    assert client.append("INBOX", None, None, _message("invoice", "Please pay."))[0] == "OK"
    status, data = client.select("INBOX")
    assert (status, data) == ("OK", [b"2"])
    status, data = client.fetch("1", "(BODY.PEEK[] FLAGS)")
    assert status == "OK"
    assert data[0][1] == original  # type: ignore[index]
    assert b"\\Flagged" in data[1]  # type: ignore[operator]
    assert client.search(None, "SUBJECT", "invoice") == ("OK", [b"2"])
    assert client.uid("SEARCH", "BODY", "soup") == ("OK", [b"1"])
    status, data = client.store("2", "+FLAGS", r"(\Seen \Answered)")
    assert status == "OK" and b"\\Answered" in data[0]  # type: ignore[operator]
    status, data = client.copy("1:2", "Receipts")
    assert status == "OK"
    status, data = client.uid("MOVE", "2", "Archive")
    assert status == "OK"
    assert client.status("Archive", "(MESSAGES)") == ("OK", [b'"Archive" (MESSAGES 1)'])
    assert client.store("1", "+FLAGS", r"\Deleted")[0] == "OK"
    status, data = client.expunge()
    assert (status, data) == ("OK", [b"2", b"1"])  # imaplib also keeps the EXPUNGE of the MOVE
    status, data = client.select("Receipts", readonly=True)
    assert (status, data) == ("OK", [b"2"])
    status, data = client.fetch("1:2", "(RFC822.SIZE BODYSTRUCTURE)")
    assert status == "OK" and f"RFC822.SIZE {len(original)}".encode() in data[0]  # type: ignore[operator]
    client.logout()


def test_imaplib_idle_hears_new_mail(server: _Server) -> None:
    watcher = _login(server, tls=True)
    watcher.select("Drafts")
    tag = watcher._new_tag().decode()  # type: ignore[attr-defined]
    watcher.send(f"{tag} IDLE\r\n".encode())
    assert watcher.readline().startswith(b"+ ")
    other = _login(server)
    started = time.monotonic()
    assert other.append("Drafts", None, None, _message("draft", "Dear ..."))[0] == "OK"
    line = watcher.readline()
    latency = time.monotonic() - started
    assert re.fullmatch(rb"\* \d+ EXISTS\r\n", line), line
    assert latency < 1.0, latency
    assert re.fullmatch(rb"\* \d+ RECENT\r\n", watcher.readline())  # an IMAP4rev1 session (RFC 3501 §7.3.2)
    watcher.send(b"DONE\r\n")
    assert watcher.readline() == f"{tag} OK IDLE terminated\r\n".encode()
    other.logout()
    watcher.logout()


def _curl(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", "--user", f"alice@example.test:{PASSWORD}", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_curl_list_append_search_fetch(server: _Server, tmp_path: Path) -> None:
    need(shutil.which("curl") is not None, "curl not installed (Debian package curl)")
    base = f"imap://127.0.0.1:{server.ports['imap']}"
    assert b'"/" "Junk"' in _curl(f"{base}/")
    assert _curl("--request", "CREATE Curl", f"{base}/") == b""
    message = _message("from curl", "Sent with curl.")
    upload = tmp_path / "message.eml"
    upload.write_bytes(message)
    _curl("--upload-file", str(upload), f"{base}/Curl")
    assert _curl("--request", "SEARCH SUBJECT curl", f"{base}/Curl").strip() == b"* SEARCH 1"
    assert _curl(f"{base}/Curl;UID=1") == message
    secure = f"imaps://127.0.0.1:{server.ports['imaps']}"
    assert (
        _curl("--insecure", f"{secure}/Curl;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)") == b"Subject: from curl\r\n\r\n"
    )


def _mbsync_config(tmp_path: Path, port: int) -> Path:
    local = tmp_path / "mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount pochta
Host 127.0.0.1
Port {port}
User bob@example.test
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


def _plain(message: bytes) -> bytes:
    """What mbsync keeps of a message: LF line ends, without its own X-TUID header field."""
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(b"X-TUID: "))


def _mbsync(config: Path) -> None:
    result = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def test_mbsync_two_way_sync(server: _Server, tmp_path: Path) -> None:
    need(shutil.which("mbsync") is not None, "mbsync not installed (Debian package isync)")
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    client.login("bob@example.test", PASSWORD)
    first, second = _message("first", "One."), _message("second", "Two.")
    assert client.append("INBOX", None, None, first)[0] == "OK"
    assert client.append("Sent", r"(\Seen)", None, second)[0] == "OK"
    config = _mbsync_config(tmp_path, server.ports["imap"])
    _mbsync(config)
    local = tmp_path / "mail"
    inbox_files = list((local / "INBOX" / "new").iterdir()) + list((local / "INBOX" / "cur").iterdir())
    assert [_plain(path.read_bytes()) for path in inbox_files] == [_plain(first)]
    assert [_plain(path.read_bytes()) for path in (local / "Sent" / "cur").iterdir()] == [_plain(second)]
    # flag the INBOX message locally, and file a new message in a new local folder
    target = local / "INBOX" / "cur" / (inbox_files[0].name.split(":")[0] + ":2,FS")
    inbox_files[0].rename(target)
    (local / "Notes" / "cur").mkdir(parents=True)
    (local / "Notes" / "new").mkdir()
    (local / "Notes" / "tmp").mkdir()
    note = _message("note", "Remember the milk.")
    (local / "Notes" / "cur" / "1700000000.1.host:2,S").write_bytes(note)
    _mbsync(config)
    client.select("INBOX")
    status, data = client.fetch("1", "(FLAGS)")
    assert status == "OK" and b"\\Flagged" in data[0] and b"\\Seen" in data[0]  # type: ignore[operator]
    status, data = client.select("Notes")
    assert (status, data) == ("OK", [b"1"])
    status, data = client.fetch("1", "(BODY.PEEK[])")
    assert _plain(data[0][1]) == _plain(note)  # type: ignore[index,arg-type]
    _mbsync(config)  # nothing new: no duplicates either way
    assert client.select("Notes") == ("OK", [b"1"])
    assert len(list((local / "Notes" / "cur").iterdir())) == 1
    client.logout()


def test_getmail_fetches_and_deletes(server: _Server, tmp_path: Path) -> None:
    need(shutil.which("getmail") is not None, "getmail not installed (Debian package getmail6)")
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    client.login("alice@example.test", PASSWORD)
    client.create("Fetchme")
    messages = [_message(f"getmail {number}", "Fetch me.") for number in range(3)]
    for message in messages:
        assert client.append("Fetchme", None, None, message)[0] == "OK"
    maildir = tmp_path / "Maildir"
    for name in ("cur", "new", "tmp"):
        (maildir / name).mkdir(parents=True)
    (tmp_path / "getmailrc").write_text(
        f"""[retriever]
type = SimpleIMAPRetriever
server = 127.0.0.1
port = {server.ports["imap"]}
username = alice@example.test
password = {PASSWORD}
mailboxes = ("Fetchme",)

[destination]
type = MDA_external
path = /bin/sh
arguments = ("-c", "cat > {maildir}/new/$$.eml")
allow_root_commands = true

[options]
delete = true
read_all = true
"""
    )
    result = subprocess.run(
        ["getmail", "--getmaildir", str(tmp_path), "--rcfile", "getmailrc"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace") + result.stdout.decode(errors="replace")
    fetched = sorted(path.read_bytes() for path in (maildir / "new").iterdir())
    assert len(fetched) == 3
    for message in messages:  # getmail adds trace fields to the header; the body arrives as sent
        body = message.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        assert any(body in got.replace(b"\r\n", b"\n") for got in fetched)
    assert client.select("Fetchme") == ("OK", [b"0"])
    client.logout()
