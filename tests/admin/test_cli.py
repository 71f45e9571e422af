"""The admin CLI, in-process with Click's runner against a real store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pochta.admin.cli import cli


@pytest.fixture
def pochta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    config = tmp_path / "pochta.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("POCHTA_CONFIG", str(config))
    return CliRunner()


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)


def ok(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = run(runner, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def fails(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = run(runner, *args, stdin=stdin)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pochta: "), result.output  # one clear line
    return lines[0]


def test_domains(pochta: CliRunner) -> None:
    assert ok(pochta, "domain", "add", "Example.TEST") == "domain example.test added\n"
    assert ok(pochta, "domain", "add", "bücher.example") == "domain xn--bcher-kva.example added\n"
    assert "exists" in fails(pochta, "domain", "add", "example.test")
    assert "invalid domain" in fails(pochta, "domain", "add", "bad_domain!")
    assert "address literal" in fails(pochta, "domain", "add", "[127.0.0.1]")
    assert ok(pochta, "domain", "list") == "example.test\nxn--bcher-kva.example\n"
    assert json.loads(ok(pochta, "domain", "list", "--json")) == ["example.test", "xn--bcher-kva.example"]
    assert ok(pochta, "domain", "remove", "xn--bcher-kva.example") == "domain xn--bcher-kva.example removed\n"
    assert "not served" in fails(pochta, "domain", "remove", "nowhere.test")


def test_users(pochta: CliRunner) -> None:
    ok(pochta, "domain", "add", "example.test")
    assert ok(pochta, "user", "add", "alice@example.test", "--password-stdin", stdin="s3cret-pass\n") == (
        "user alice@example.test added\n"
    )
    assert "exists" in fails(pochta, "user", "add", "alice@example.test", "--password-stdin", stdin="s3cret-pass\n")
    assert "not served" in fails(pochta, "user", "add", "x@nowhere.test", "--password-stdin", stdin="s3cret-pass\n")
    assert "missing @" in fails(pochta, "user", "add", "not-an-address", "--password-stdin", stdin="s3cret-pass\n")
    assert "empty password" in fails(pochta, "user", "add", "bob@example.test", "--password-stdin", stdin="\n")
    assert "shorter" in fails(pochta, "user", "add", "bob@example.test", "--password-stdin", stdin="abc\n")
    users = json.loads(ok(pochta, "user", "list", "--json"))
    assert [u["address"] for u in users] == ["alice@example.test"]  # nothing half-written
    ok(pochta, "user", "passwd", "alice@example.test", "--password-stdin", stdin="another-pass\n")
    assert "no account" in fails(pochta, "user", "passwd", "zed@example.test", "--password-stdin", stdin="x" * 9)
    assert ok(pochta, "user", "quota", "alice@example.test", "--storage", "2G") == (
        "quota of alice@example.test set to 2.0 GiB\n"
    )
    assert "not a size" in fails(pochta, "user", "quota", "alice@example.test", "--storage", "huge")
    assert json.loads(ok(pochta, "user", "list", "--json"))[0]["quota_bytes"] == 2 * 2**30
    assert "alice@example.test" in ok(pochta, "user", "list")
    assert "domain example.test still has 1 account" in fails(pochta, "domain", "remove", "example.test")
    boxes = json.loads(ok(pochta, "mailbox", "list", "alice@example.test", "--json"))
    assert {b["name"]: b["special_use"] for b in boxes}["Junk"] == "\\Junk"
    assert "INBOX" in ok(pochta, "mailbox", "list", "alice@example.test")
    assert "no account" in fails(pochta, "mailbox", "list", "zed@example.test")
    assert ok(pochta, "user", "remove", "alice@example.test") == "user alice@example.test removed\n"
    assert "no account" in fails(pochta, "user", "remove", "alice@example.test")


def test_password_needs_a_terminal_or_stdin(pochta: CliRunner) -> None:
    ok(pochta, "domain", "add", "example.test")
    assert "--password-stdin" in fails(pochta, "user", "add", "alice@example.test")


def test_aliases(pochta: CliRunner) -> None:
    ok(pochta, "domain", "add", "example.test")
    ok(pochta, "user", "add", "alice@example.test", "--password-stdin", stdin="s3cret-pass\n")
    assert ok(pochta, "alias", "add", "team@example.test", "alice@example.test", "x@remote.test") == (
        "alias team@example.test → alice@example.test, x@remote.test\n"
    )
    ok(pochta, "alias", "add", "@example.test", "alice@example.test")
    assert "missing @" in fails(pochta, "alias", "add", "sales@example.test", "alice@example.test", "nope")
    assert "is an account" in fails(pochta, "alias", "add", "alice@example.test", "x@remote.test")
    assert "exists" in fails(pochta, "alias", "add", "team@example.test", "x@remote.test")
    assert "not served" in fails(pochta, "alias", "add", "x@nowhere.test", "alice@example.test")
    listed = json.loads(ok(pochta, "alias", "list", "--json"))
    assert listed == [
        {"address": "@example.test", "targets": ["alice@example.test"]},
        {"address": "team@example.test", "targets": ["alice@example.test", "x@remote.test"]},
    ]
    assert "team@example.test → alice@example.test, x@remote.test" in ok(pochta, "alias", "list")
    ok(pochta, "alias", "remove", "team@example.test")
    assert "no alias" in fails(pochta, "alias", "remove", "team@example.test")


def test_bad_config_is_refused_with_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[listen]\nsmpt = []\n")
    monkeypatch.setenv("POCHTA_CONFIG", str(config))
    assert fails(CliRunner(), "domain", "list") == "pochta: config: listen.smpt: unknown key"


def test_config_docs_and_check(pochta: CliRunner) -> None:
    assert ok(pochta, "config", "docs").startswith("# Configuration reference")
    assert "hostname=mx.example.test" in ok(pochta, "config", "check")


def test_dkim_keys(pochta: CliRunner) -> None:
    ok(pochta, "domain", "add", "example.test")
    rsa = ok(pochta, "dkim", "generate", "example.test", "--selector", "s1")
    assert rsa.startswith('s1._domainkey.example.test. TXT "v=DKIM1; k=rsa; p=MII')
    ed = ok(pochta, "dkim", "generate", "Example.TEST", "--algorithm", "ed25519")
    assert '._domainkey.example.test. TXT "v=DKIM1; k=ed25519; p=' in ed
    assert "exists" in fails(pochta, "dkim", "generate", "example.test", "--selector", "s1")
    assert "not served" in fails(pochta, "dkim", "generate", "nowhere.test")
    assert "selector" in fails(pochta, "dkim", "generate", "example.test", "--selector", "a b")
    listed = ok(pochta, "dkim", "list")
    assert rsa.strip() in listed and ed.strip() in listed
    ok(pochta, "dkim", "remove", "example.test", "s1")
    assert "no DKIM key" in fails(pochta, "dkim", "remove", "example.test", "s1")


def test_queue_commands_on_an_empty_queue(pochta: CliRunner) -> None:
    assert json.loads(ok(pochta, "queue", "list", "--json")) == []
    assert "no queue entry 7" in fails(pochta, "queue", "show", "7")
    for action in ("retry", "delete", "hold", "release"):
        assert "no queue entry 7" in fails(pochta, "queue", action, "7")
