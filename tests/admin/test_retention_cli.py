"""`pochta retention`, `archive run`, `restore` and `journal`, in-process against a real store in tmp_path."""

from __future__ import annotations

import asyncio
import json
import mailbox as mbox_module
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pochta.archive.journal import Journal
from pochta.mail.envelope import Envelope, Recipient
from pochta.store.api import INBOX, Store
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

from ..archive.helpers import put
from .test_cli import fails, ok

ALICE = "alice@example.test"


@pytest.fixture
def pochta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    config = tmp_path / "pochta.toml"
    config.write_text(
        f'hostname = "mx.example.test"\ndata_dir = "{tmp_path / "data"}"\n'
        "[retention]\narchive_after_days = 0\ntrash_days = 30\nundelete_days = 30\n"
    )
    monkeypatch.setenv("POCHTA_CONFIG", str(config))
    runner = CliRunner()
    ok(runner, "domain", "add", "example.test")
    ok(runner, "user", "add", ALICE, "--password-stdin", stdin="s3cret-pass\n")
    return runner


def _with_store(tmp_path: Path, action: Callable[[Store, FileBlobs], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "data")
        blobs = FileBlobs(tmp_path / "data" / "blobs", database=tmp_path / "data" / DATABASE_NAME)
        try:
            await action(store, blobs)
        finally:
            await store.close()
            blobs.close()

    asyncio.run(main())


def test_policies_set_list_remove(pochta: CliRunner) -> None:
    assert ok(pochta, "retention", "set", "Example.TEST", "--archive-after", "365", "--per-year") == (
        "example.test INBOX: archive after 365 days into Archive/<year>\n"
    )
    assert ok(pochta, "retention", "set", ALICE, "--mailbox", "Lists", "--expunge-after", "14") == (
        f"{ALICE} Lists: expunge after 14 days\n"
    )
    ok(pochta, "retention", "set", ALICE, "--mailbox", "Trash", "--expunge-after", "0")
    listed = json.loads(ok(pochta, "retention", "list", "--json"))
    assert [(p["scope"], p["target"], p["mailbox"], p["action"], p["days"]) for p in listed] == [
        ("account", ALICE, "Lists", "expunge", 14),
        ("account", ALICE, "Trash", "expunge", 0),
        ("domain", "example.test", INBOX, "archive", 365),
    ]
    text = ok(pochta, "retention", "list")
    assert "Trash: expunge after 30 days" in text and f"{ALICE}" in text and "off" in text
    assert ok(pochta, "retention", "remove", ALICE, "--mailbox", "Lists") == f"removed {ALICE} Lists\n"
    assert "no retention policy" in fails(pochta, "retention", "remove", ALICE, "--mailbox", "Lists")
    assert "one of" in fails(pochta, "retention", "set", ALICE)
    assert "one of" in fails(pochta, "retention", "set", ALICE, "--archive-after", "1", "--expunge-after", "1")
    assert "--per-year" in fails(pochta, "retention", "set", ALICE, "--expunge-after", "1", "--per-year")
    assert "archived into itself" in fails(
        pochta, "retention", "set", ALICE, "--mailbox", "Archive/2020", "--archive-after", "1"
    )
    assert "no account" in fails(pochta, "retention", "set", "zed@example.test", "--archive-after", "1")
    assert "no domain" in fails(pochta, "retention", "set", "nowhere.test", "--archive-after", "1")


def test_archive_run_dry_run_then_for_real(pochta: CliRunner, tmp_path: Path) -> None:
    async def fill(store: Store, _blobs: FileBlobs) -> None:
        account = await store.get_account(ALICE)
        assert account is not None
        old = datetime.now(UTC) - timedelta(days=100)
        for _ in range(3):
            await put(store, account.id, INBOX, received=old)
        await put(store, account.id, INBOX, received=datetime.now(UTC))

    _with_store(tmp_path, fill)
    ok(pochta, "retention", "set", ALICE, "--archive-after", "30")
    dry = ok(pochta, "archive", "run", "--dry-run")
    assert f"would archive 3 {ALICE} INBOX -> Archive\n" in dry
    assert ok(pochta, "archive", "run", "--dry-run") == dry  # nothing changed
    done = ok(pochta, "archive", "run")
    assert f"archive 3 {ALICE} INBOX -> Archive\n" in done and "would" not in done
    assert "move or expunge nothing" in ok(pochta, "archive", "run")
    boxes = {b["name"]: b["messages"] for b in json.loads(ok(pochta, "mailbox", "list", ALICE, "--json"))}
    assert (boxes[INBOX], boxes["Archive"]) == (1, 3)


def test_restore(pochta: CliRunner, tmp_path: Path) -> None:
    async def fill_and_expunge(store: Store, _blobs: FileBlobs) -> None:
        account = await store.get_account(ALICE)
        assert account is not None
        for name in (INBOX, "Sent"):
            uid = await put(store, account.id, name, received=datetime(2026, 1, 5, tzinfo=UTC))
            found = await store.get_mailbox(account.id, name)
            assert found is not None
            await store.expunge(found.id, [uid])

    _with_store(tmp_path, fill_and_expunge)
    listing = ok(pochta, "restore", ALICE, "--dry-run")
    assert len(listing.splitlines()) == 2 and "received 2026-01-05" in listing
    assert ok(pochta, "restore", ALICE, "--mailbox", "Sent") == f"restored 1 messages to {ALICE}\n"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert ok(pochta, "restore", ALICE, "--since", tomorrow) == f"restored 0 messages to {ALICE}\n"
    assert ok(pochta, "restore", ALICE, "--since", "2026-01-01") == f"restored 1 messages to {ALICE}\n"
    assert ok(pochta, "restore", ALICE, "--dry-run") == ""
    boxes = {b["name"]: b["messages"] for b in json.loads(ok(pochta, "mailbox", "list", ALICE, "--json"))}
    assert (boxes[INBOX], boxes["Sent"]) == (1, 1)
    assert "not a date" in fails(pochta, "restore", ALICE, "--since", "yesterday")
    assert "no account" in fails(pochta, "restore", "zed@example.test")


def test_journal_enable_search_export(pochta: CliRunner, tmp_path: Path) -> None:
    assert ok(pochta, "journal", "enable", "example.test", "--retention-days", "3650") == (
        "journal enabled for example.test, kept 3650 days\n"
    )
    assert "no domain" in fails(pochta, "journal", "enable", "nowhere.test")
    assert ok(pochta, "journal", "list") == "example.test 3650 days\n"

    async def record(store: Store, blobs: FileBlobs) -> None:
        journal = Journal(store, blobs, tmp_path / "data" / "journal", now=lambda: datetime.now(UTC))
        for number, (sender, rcpt) in enumerate(
            [("carol@other.test", ALICE), (ALICE, "dave@other.test"), ("eve@other.test", ALICE)]
        ):
            writer = blobs.create()
            writer.write(f"Subject: message {number}\r\n\r\nFrom me, number {number}.\r\n".encode())
            envelope = Envelope(mail_from=sender, recipients=(Recipient(address=rcpt),))
            received = datetime(2026, 3, 1 + number, 12, tzinfo=UTC)
            await journal(envelope, writer, received=received, is_outgoing=sender == ALICE)
            writer.abort()

    _with_store(tmp_path, record)
    found = [json.loads(line) for line in ok(pochta, "journal", "search", "--to", ALICE, "--json").splitlines()]
    assert [(r["from"], r["direction"]) for r in found] == [("carol@other.test", "in"), ("eve@other.test", "in")]
    assert len(ok(pochta, "journal", "search", "--from", ALICE).splitlines()) == 1
    assert len(ok(pochta, "journal", "search", "--since", "2026-03-02", "--until", "2026-03-02").splitlines()) == 1
    assert len(ok(pochta, "journal", "search", "--until", "2026-03-02").splitlines()) == 2
    out = tmp_path / "export.mbox"
    assert ok(pochta, "journal", "export", "--to", ALICE, "--out", str(out)) == f"exported 2 messages to {out}\n"
    box = mbox_module.mbox(out)
    assert [m["Subject"] for m in box] == ["message 0", "message 2"]
    box.close()
    assert "exists" in fails(pochta, "journal", "export", "--out", str(out))
    assert ok(pochta, "journal", "disable", "example.test") == "journal disabled for example.test\n"
    assert "not enabled" in fails(pochta, "journal", "disable", "example.test")
