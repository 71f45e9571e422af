"""`pochta import` and `pochta export` end to end through the CLI, against a real store in tmp_path."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pochta.admin.cli import cli
from pochta.archive.maildir import directory_name, folder_name
from pochta.store.api import Message
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from tests.archive.corpus import corpus

FLAG_LETTERS = ["", "S", "FRS", "DT", "P"]
FLAG_SETS = [
    frozenset(),
    frozenset({"\\Seen"}),
    frozenset({"\\Flagged", "\\Answered", "\\Seen"}),
    frozenset({"\\Draft", "\\Deleted"}),
    frozenset({"$Forwarded"}),
]


@pytest.fixture
def pochta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    config = tmp_path / "pochta.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{tmp_path / "data"}"\n[storage]\nfsync = false\n')
    monkeypatch.setenv("POCHTA_CONFIG", str(config))
    runner = CliRunner()
    ok(runner, "domain", "add", "example.test")
    for user in ("a", "b"):
        ok(runner, "user", "add", f"{user}@example.test", "--password-stdin", stdin="a-long-password\n")
    return runner


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)


def ok(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = run(runner, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def mailboxes(data: Path, address: str) -> dict[str, list[Message]]:
    async def read() -> dict[str, list[Message]]:
        store = await SqliteStore.open(data)
        try:
            account = await store.get_account(address)
            assert account is not None
            found = {}
            for mailbox in await store.list_mailboxes(account.id):
                messages = await store.messages(mailbox.id)
                if messages:
                    found[mailbox.name] = messages
            return found
        finally:
            await store.close()

    return asyncio.run(read())


def make_maildir(root: Path, files: list[Path], *, folder: str = "") -> list[tuple[bytes, frozenset[str], int]]:
    """A Maildir of `files` in this order, flags and mtimes varied; returns what each should become."""
    target = root / folder if folder else root
    for sub in ("cur", "new", "tmp"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    expected = []
    for index, path in enumerate(files):
        letters = FLAG_LETTERS[index % len(FLAG_LETTERS)]
        name = target / "cur" / f"{1600000000 + index}.{index:05d}.corpus:2,{letters}"
        name.write_bytes(path.read_bytes())
        stamp = 1500000000 + index * 3600
        os.utime(name, (stamp, stamp))
        expected.append((path.read_bytes(), FLAG_SETS[index % len(FLAG_SETS)], stamp))
    return expected


def blob_bytes(data: Path, messages: list[Message]) -> list[bytes]:
    blobs = FileBlobs(data / "blobs", fsync=False, database=data / DATABASE_NAME)
    try:
        return [blobs.read_sync(m.blob_id) for m in messages]
    finally:
        blobs.close()


def test_corpus_round_trips_byte_for_byte_through_mbox_and_maildir(pochta: CliRunner, tmp_path: Path) -> None:
    files = corpus()
    source = tmp_path / "source"
    expected = make_maildir(source, files)
    lists = make_maildir(source, files[:7], folder=directory_name("Lists/Pochta.dev"))
    data = tmp_path / "data"

    out = ok(pochta, "import", "a@example.test", str(source))
    assert f"imported {len(files) + 7} messages" in out
    assert "created Lists/Pochta.dev" in out
    stored = mailboxes(data, "a@example.test")
    assert set(stored) == {"INBOX", "Lists/Pochta.dev"}
    inbox = stored["INBOX"]
    assert blob_bytes(data, inbox) == [content for content, _, _ in expected]
    assert [m.flags for m in inbox] == [flags for _, flags, _ in expected]
    assert [int(m.internal_date.timestamp()) for m in inbox] == [stamp for _, _, stamp in expected]
    assert blob_bytes(data, stored["Lists/Pochta.dev"]) == [content for content, _, _ in lists]

    # account a → a directory of mbox files → account b → a Maildir++ tree: the same octets, flags, dates
    ok(pochta, "export", "a@example.test", str(tmp_path / "mboxes"), "--format", "mbox")
    assert (tmp_path / "mboxes" / "INBOX").is_file()
    assert (tmp_path / "mboxes" / "Lists.sbd" / "Pochta.dev").is_file()
    ok(pochta, "import", "b@example.test", str(tmp_path / "mboxes"))
    again = mailboxes(data, "b@example.test")
    for name in ("INBOX", "Lists/Pochta.dev"):
        assert [(m.blob_id, m.flags, m.internal_date) for m in again[name]] == [
            (m.blob_id, m.flags, m.internal_date) for m in stored[name]
        ]

    ok(pochta, "export", "b@example.test", str(tmp_path / "maildir"), "--format", "maildir")
    cur = sorted((tmp_path / "maildir" / "cur").iterdir(), key=lambda p: int(p.name.split(".M")[1].split("V")[0]))
    assert [p.read_bytes() for p in cur] == [content for content, _, _ in expected]
    assert [p.name.rpartition(",")[2] for p in cur] == [FLAG_LETTERS[i % len(FLAG_LETTERS)] for i in range(len(files))]
    assert [int(p.stat().st_mtime) for p in cur] == [stamp for _, _, stamp in expected]
    assert len(list((tmp_path / "maildir" / ".Lists.Pochta&AC4-dev" / "cur").iterdir())) == 7


def test_keywords_travel_through_dovecot_keywords(pochta: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for sub in ("cur", "new", "tmp"):
        (source / sub).mkdir(parents=True)
    (source / "dovecot-keywords").write_text("0 $Label1\n1 work\n")
    (source / "cur" / "1.one:2,Sab").write_bytes(b"Subject: one\n\nbody\n")
    (source / "new" / "2.two").write_bytes(b"Subject: two\n\nbody\n")
    ok(pochta, "import", "a@example.test", str(source))
    stored = mailboxes(tmp_path / "data", "a@example.test")["INBOX"]
    assert [m.flags for m in stored] == [{"\\Seen", "$Label1", "work"}, frozenset()]
    ok(pochta, "export", "a@example.test", str(tmp_path / "out"), "--format", "maildir", "--mailbox", "INBOX")
    letters = {
        line.split()[1]: "abcdefghijklmnopqrstuvwxyz"[int(line.split()[0])]
        for line in (tmp_path / "out" / "dovecot-keywords").read_text().splitlines()
    }
    names = sorted(p.name for p in (tmp_path / "out" / "cur").iterdir())
    assert names[0].endswith(":2,S" + "".join(sorted(letters[k] for k in ("$Label1", "work"))))
    ok(pochta, "export", "a@example.test", str(tmp_path / "one.mbox"), "--format", "mbox", "--mailbox", "inbox")
    assert b"X-Keywords: $Label1 work\n" in (tmp_path / "one.mbox").read_bytes()


def test_an_mbox_file_goes_to_the_mailbox_asked_and_malformed_parts_are_reported(
    pochta: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "in.mbox"
    path.write_bytes(
        b"garbage before the first message\n"
        b"From a Mon Jan  4 10:00:01 2021\nSubject: a\n\none\n\n"
        b"From b Mon Jan  4 10:00:02 2021\nStatus: RO\nSubject: b\n\ntwo\n"
    )
    result = run(pochta, "import", "a@example.test", str(path), "--mailbox", "Old/2021")
    assert result.exit_code == 0
    assert "imported 2 messages" in result.stdout and "created Old/2021" in result.stdout
    assert "skipped" in result.stderr and "offset 0" in result.stderr and "1 skipped" in result.stderr
    stored = mailboxes(tmp_path / "data", "a@example.test")["Old/2021"]
    assert [m.flags for m in stored] == [frozenset(), {"\\Seen"}]
    # a second run finds nothing new; --restart imports again
    assert "imported 0 messages" in ok(pochta, "import", "a@example.test", str(path), "--mailbox", "Old/2021")
    assert "imported 2 messages" in ok(
        pochta, "import", "a@example.test", str(path), "--mailbox", "Old/2021", "--restart"
    )


def test_bad_arguments_get_one_clear_line(pochta: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    result = run(pochta, "import", "nobody@example.test", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "no account nobody@example.test" in result.output
    result = run(pochta, "import", "a@example.test", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "neither a Maildir nor a directory of mbox files" in result.output
    result = run(pochta, "export", "a@example.test", str(tmp_path / "x"), "--format", "mbox", "--mailbox", "Nope")
    assert result.exit_code == 1 and "has no mailbox Nope" in result.output
    (tmp_path / "taken.mbox").write_text("something\n")
    result = run(
        pochta, "export", "a@example.test", str(tmp_path / "taken.mbox"), "--format", "mbox", "--mailbox", "INBOX"
    )
    assert result.exit_code == 1 and "exists" in result.output


def test_maildir_folder_names() -> None:
    assert folder_name(".Sent") == "Sent"
    assert folder_name(".Lists.Pochta&AC4-dev") == "Lists/Pochta.dev"
    assert folder_name(".&BCcENQRABD0EPgQyBDgEOgQ4-") == "Черновики"
    assert directory_name("Черновики/a.b") == ".&BCcENQRABD0EPgQyBDgEOgQ4-.a&AC4-b"
    assert folder_name(directory_name("x&y/z")) == "x&y/z"


# ---- interrupted and resumed (real processes killed with SIGKILL) ---------------------------------------------


def synthetic_mbox(path: Path, count: int) -> None:
    with open(path, "wb") as out:
        for index in range(count):
            body = (b"line %d of a message body that is long enough\n" % index) * (20 + index % 200)
            out.write(
                b"From sender@example.org Mon Jan  4 10:%02d:%02d 2021\nSubject: message %d\n"
                b"Message-ID: <%d@example.org>\n\n%s\n" % (index // 60 % 60, index % 60, index, index, body)
            )


def pochta_process(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pochta", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError


def imported_so_far(database: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT coalesce(sum(messages), 0) FROM import_progress").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


def test_an_import_killed_midway_resumes_without_duplicates(pochta: CliRunner, tmp_path: Path) -> None:
    count = 4000
    synthetic_mbox(tmp_path / "big.mbox", count)
    config = tmp_path / "pochta.toml"
    database = tmp_path / "data" / "pochta.sqlite3"
    kills = 0
    for _ in range(3):
        process = pochta_process(config, "import", "a@example.test", str(tmp_path / "big.mbox"))
        before = imported_so_far(database)
        try:
            wait_for(lambda b=before, p=process: imported_so_far(database) > b or p.poll() is not None)  # type: ignore[misc]
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate()
    assert kills >= 1, "the import finished before it could be interrupted"
    assert 0 < imported_so_far(database) < count
    out = ok(pochta, "import", "a@example.test", str(tmp_path / "big.mbox"))
    assert "were not imported again" in out
    inbox = mailboxes(tmp_path / "data", "a@example.test")["INBOX"]
    assert len(inbox) == count
    assert len({m.blob_id for m in inbox}) == count  # every message once
    subjects = [blob.split(b"\n", 1)[0] for blob in blob_bytes(tmp_path / "data", inbox)]
    assert subjects == [b"Subject: message %d" % i for i in range(count)]  # in order, none missing


def test_an_export_killed_midway_resumes_without_duplicates(pochta: CliRunner, tmp_path: Path) -> None:
    count = 3000
    synthetic_mbox(tmp_path / "big.mbox", count)
    ok(pochta, "import", "a@example.test", str(tmp_path / "big.mbox"))
    config = tmp_path / "pochta.toml"
    target = tmp_path / "out.mbox"
    state = tmp_path / "out.mbox.pochta-export.json"
    process = pochta_process(config, "export", "a@example.test", str(target), "--format", "mbox", "--mailbox", "INBOX")
    try:
        wait_for(lambda: state.exists() or process.poll() is not None)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate()
    assert state.exists(), "the export finished before it could be interrupted"
    out = ok(pochta, "export", "a@example.test", str(target), "--format", "mbox", "--mailbox", "INBOX")
    assert "written by an earlier run were kept" in out
    assert not state.exists()
    ok(pochta, "import", "b@example.test", str(target))
    original = mailboxes(tmp_path / "data", "a@example.test")["INBOX"]
    copied = mailboxes(tmp_path / "data", "b@example.test")["INBOX"]
    assert [m.blob_id for m in copied] == [m.blob_id for m in original]
