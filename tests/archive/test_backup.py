"""`pochta backup`, `restore-backup` and `verify` through the CLI against real stores in tmp_path."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pochta.admin.cli import cli
from pochta.store.sqlite import SqliteStore
from tests.archive.corpus import corpus
from tests.archive.test_import_export import mailboxes, make_maildir


def config_file(tmp_path: Path, name: str) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{tmp_path / name}"\n')
    return config


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin, catch_exceptions=False)


def ok(config: Path, *args: str, stdin: str | None = None) -> str:
    result = run(config, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def live(tmp_path: Path) -> Path:
    config = config_file(tmp_path, "live")
    ok(config, "domain", "add", "example.test")
    ok(config, "user", "add", "a@example.test", "--password-stdin", stdin="a-long-password\n")
    files = corpus()[:60]
    make_maildir(tmp_path / "md", files)
    make_maildir(tmp_path / "md", files[:5], folder=".Lists.Sub")
    ok(config, "import", "a@example.test", str(tmp_path / "md"))
    return config


def snapshot(data: Path) -> dict[str, list[tuple[int, str, frozenset[str], int]]]:
    return {
        name: [(m.uid, m.blob_id, m.flags, int(m.internal_date.timestamp())) for m in messages]
        for name, messages in mailboxes(data, "a@example.test").items()
    }


def _expunge_tenth(data: Path) -> str:
    """Expunge INBOX uid 10 (into the undelete bin, which still refers to its blob); returns the blob id."""

    async def run() -> str:
        store = await SqliteStore.open(data)
        try:
            account = await store.get_account("a@example.test")
            assert account is not None
            inbox = await store.get_mailbox(account.id, "INBOX")
            assert inbox is not None
            (message,) = await store.messages(inbox.id, uids=[10])
            assert await store.expunge(inbox.id, [10]) == [10]
            return message.blob_id
        finally:
            await store.close()

    return asyncio.run(run())


def _blob(data: Path, blob_id: str) -> bytes | None:
    """A blob's octets where the server keeps it: a row of the database (small ones) or a file."""
    with sqlite3.connect(data / "pochta.sqlite3") as conn:
        row = conn.execute("SELECT data FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    path = data / "blobs" / blob_id[:2] / blob_id
    return bytes(row[0]) if row else path.read_bytes() if path.is_file() else None


def _damage(data: Path, blob_id: str) -> None:
    with sqlite3.connect(data / "pochta.sqlite3") as conn:
        changed = conn.execute("UPDATE blobs SET data = CAST(data || x'78' AS BLOB) WHERE id = ?", (blob_id,)).rowcount
    if not changed:
        path = data / "blobs" / blob_id[:2] / blob_id
        path.write_bytes(path.read_bytes() + b"x")


def _remove(data: Path, blob_id: str) -> None:
    with sqlite3.connect(data / "pochta.sqlite3") as conn:
        conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
    (data / "blobs" / blob_id[:2] / blob_id).unlink(missing_ok=True)


def test_backup_then_restore_into_a_fresh_data_dir_gives_the_same_mailboxes(live: Path, tmp_path: Path) -> None:
    binned = _expunge_tenth(tmp_path / "live")
    out = ok(live, "backup", str(tmp_path / "backup"))
    assert "backup of 65 messages" in out  # 64 in mailboxes, 1 in the undelete bin
    assert _blob(tmp_path / "backup", binned) is not None
    marker = json.loads((tmp_path / "backup" / "BACKUP.json").read_text())
    assert marker["rows"] == 65 and marker["problems"] == []
    assert (tmp_path / "backup" / "pochta.sqlite3").is_file()
    assert not (tmp_path / "backup" / "pochta.sqlite3-wal").exists()  # one self-contained file

    fresh = config_file(tmp_path, "fresh")
    out = ok(fresh, "restore-backup", str(tmp_path / "backup"))
    assert "restored 65 messages" in out
    assert snapshot(tmp_path / "fresh") == snapshot(tmp_path / "live")
    assert "no problems found" in ok(fresh, "verify")
    assert ok(fresh, "user", "list", "--json").count("a@example.test") == 1

    again = run(fresh, "restore-backup", str(tmp_path / "backup"))
    assert again.exit_code == 1 and "already holds a store" in again.output
    busy = run(live, "backup", str(tmp_path / "backup"))
    assert busy.exit_code == 1 and "not empty" in busy.output
    (tmp_path / "unfinished").mkdir()
    unfinished = run(config_file(tmp_path, "other"), "restore-backup", str(tmp_path / "unfinished"))
    assert unfinished.exit_code == 1 and "no finished backup" in unfinished.output


def test_verify_reports_damaged_and_missing_blobs_and_wrong_counters(live: Path, tmp_path: Path) -> None:
    assert "no problems found" in ok(live, "verify")
    data = tmp_path / "live"
    inbox = mailboxes(data, "a@example.test")["INBOX"]
    damaged, missing = inbox[0].blob_id, inbox[1].blob_id
    _damage(data, damaged)
    _remove(data, missing)
    conn = sqlite3.connect(data / "pochta.sqlite3")
    conn.execute("UPDATE mailboxes SET messages = messages + 1 WHERE name = 'Lists/Sub'")
    conn.commit()
    conn.close()

    result = run(live, "verify")
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    assert f"problem: blob {damaged} is damaged" in "\n".join(problems)
    assert f"problem: a@example.test INBOX uid 1: row says {inbox[0].size} octets" in "\n".join(problems)
    assert f"problem: a@example.test INBOX uid 2: blob {missing} is missing" in problems
    assert any("Lists/Sub: counters say 6 messages" in p for p in problems)
    assert result.stderr.strip().endswith("problems found")

    # a backup copies what is sound and names what is not
    result = run(live, "backup", str(tmp_path / "backup"))
    assert result.exit_code == 1
    assert f"blob {damaged} is damaged" in result.stderr and f"blob {missing} is missing" in result.stderr
