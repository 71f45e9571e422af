"""`pochta sieve` and the switches `pochta user vacation|forward`, against a real store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pochta.admin.sieve import forward_script, switches_script, vacation_script
from pochta.filters.sieve import parse

from .test_cli import fails, ok


@pytest.fixture
def pochta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    config = tmp_path / "pochta.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("POCHTA_CONFIG", str(config))
    runner = CliRunner()
    ok(runner, "domain", "add", "example.test")
    ok(runner, "user", "add", "alice@example.test", "--password-stdin", stdin="s3cret-pass\n")
    return runner


def _listing(pochta: CliRunner) -> list[tuple[str, bool]]:
    rows = json.loads(ok(pochta, "sieve", "list", "alice@example.test", "--json"))
    return [(row["name"], row["active"]) for row in rows]


def test_put_get_activate_list_remove(pochta: CliRunner, tmp_path: Path) -> None:
    script = tmp_path / "lists.sieve"
    script.write_text('require "fileinto";\nif exists "List-Id" { fileinto "Lists"; }\n')
    assert ok(pochta, "sieve", "put", "alice@example.test", "lists", str(script)) == (
        "script lists of alice@example.test stored\n"
    )
    assert ok(pochta, "sieve", "get", "alice@example.test", "lists") == script.read_text()
    assert ok(pochta, "sieve", "put", "alice@example.test", "other", "-", "--activate", stdin="keep;\n").endswith(
        "stored and active\n"
    )
    assert ok(pochta, "sieve", "list", "alice@example.test") == "lists\nother (active)\n"
    ok(pochta, "sieve", "activate", "alice@example.test", "lists")
    assert _listing(pochta) == [("lists", True), ("other", False)]
    assert "active" in fails(pochta, "sieve", "remove", "alice@example.test", "lists")
    ok(pochta, "sieve", "activate", "alice@example.test", "--none")
    assert (
        ok(pochta, "sieve", "remove", "alice@example.test", "lists") == "script lists of alice@example.test removed\n"
    )
    assert _listing(pochta) == [("other", False)]
    assert "no script" in fails(pochta, "sieve", "get", "alice@example.test", "lists")
    assert "no account" in fails(pochta, "sieve", "list", "bob@example.test")


def test_invalid_scripts_are_refused_with_the_position(pochta: CliRunner) -> None:
    line = fails(pochta, "sieve", "put", "alice@example.test", "bad", "-", stdin='fileinto "x";\n')
    assert line.startswith("pochta: invalid script: line 1:1:")
    assert _listing(pochta) == []


def test_vacation_and_forward_switches_wrap_the_users_script(pochta: CliRunner, tmp_path: Path) -> None:
    ok(pochta, "sieve", "put", "alice@example.test", "mine", "-", "--activate", stdin="keep;\n")
    body = tmp_path / "away.txt"
    body.write_text('I am away until "Monday".\n')
    ok(
        pochta,
        "user",
        "vacation",
        "alice@example.test",
        "--subject",
        "Away",
        "--body-file",
        str(body),
        "--from",
        "2026-12-01",
        "--until",
        "2026-12-31",
    )
    assert _listing(pochta) == [("mine", False), ("pochta-switches", True), ("pochta-vacation", False)]
    vacation = ok(pochta, "sieve", "get", "alice@example.test", "pochta-vacation")
    assert ':days 7 :subject "Away"' in vacation and '"I am away until \\"Monday\\".\n"' in vacation
    assert 'currentdate :value "ge" "date" "2026-12-01"' in vacation
    ok(pochta, "user", "forward", "alice@example.test", "bob@remote.test", "carol@remote.test", "--keep")
    switches = ok(pochta, "sieve", "get", "alice@example.test", "pochta-switches")
    assert switches.splitlines()[2:] == [
        'include :personal "pochta-vacation";',
        'include :personal "pochta-forward";',
        'include :personal "mine"; # the user\'s script',
    ]
    assert ok(pochta, "sieve", "get", "alice@example.test", "pochta-forward").splitlines()[1:] == [
        'require "copy";',
        'redirect :copy "bob@remote.test";',
        'redirect :copy "carol@remote.test";',
    ]
    ok(pochta, "user", "vacation", "alice@example.test", "--off")
    assert _listing(pochta) == [("mine", False), ("pochta-forward", False), ("pochta-switches", True)]
    ok(pochta, "user", "forward", "alice@example.test", "--off")
    assert _listing(pochta) == [("mine", True)]  # the user's own script runs again


def test_switch_errors(pochta: CliRunner, tmp_path: Path) -> None:
    assert "--subject and --body-file" in fails(pochta, "user", "vacation", "alice@example.test")
    body = tmp_path / "b.txt"
    body.write_text("away")
    args = ("user", "vacation", "alice@example.test", "--subject", "S", "--body-file", str(body))
    assert "YYYY-MM-DD" in fails(pochta, *args, "--from", "tomorrow")
    assert "before" in fails(pochta, *args, "--from", "2026-12-02", "--until", "2026-12-01")
    assert "at least one TARGET" in fails(pochta, "user", "forward", "alice@example.test")
    assert "no account" in fails(pochta, "user", "forward", "nobody@example.test", "x@remote.test")
    ok(pochta, "user", "forward", "alice@example.test", "--off")  # nothing to turn off: fine
    assert _listing(pochta) == []


def test_generated_scripts_parse() -> None:
    for source in (
        vacation_script(subject='A "quoted" \\ subject', body="x\ny", days=3, start=None, end=None, addresses=()),
        forward_script(("a@b.test",), keep=False),
        switches_script(["pochta-forward"], 'we"ird'),
    ):
        parse(source)
