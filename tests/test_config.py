from __future__ import annotations

from pathlib import Path

import pytest

from pochta import config
from pochta.config import ConfigError, from_mapping, load, parse_host_port

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_no_file_gives_defaults_that_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    cfg = load()
    assert cfg.listen.smtp == ("127.0.0.1:2525",)
    assert cfg.listen.imaps == ("127.0.0.1:2993",)
    assert cfg.listen.http == ("127.0.0.1:8080",)
    assert cfg.data_dir == "./pochta-data"
    assert cfg.hostname


def test_file_from_env_and_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pochta.toml"
    path.write_text(
        'hostname = "mail.example.test"\ndata_dir = "/var/lib/pochta"\n'
        '[listen]\nsmtp = ["0.0.0.0:25", "[::]:25"]\nimap = []\n'
        "[limits]\nidle_timeout = 60\n"
    )
    monkeypatch.setenv(config.ENV_VAR, str(path))
    cfg = load()
    assert cfg.hostname == "mail.example.test"
    assert cfg.listen.smtp == ("0.0.0.0:25", "[::]:25")
    assert cfg.listen.imap == ()
    assert cfg.listen.pop3 == ("127.0.0.1:2110",)  # untouched keys keep their defaults
    assert cfg.limits.idle_timeout == 60.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"hostnme": "x"}, "hostnme: unknown key"),
        ({"listen": {"smpt": []}}, "listen.smpt: unknown key"),
        ({"listen": {"smtp": "127.0.0.1:25"}}, "listen.smtp: must be a list of strings"),
        ({"listen": {"smtp": ["localhost"]}}, "listen.smtp: 'localhost' is not host:port"),
        ({"listen": {"smtp": ["127.0.0.1:70000"]}}, "listen.smtp: '127.0.0.1:70000': port out of range"),
        ({"limits": {"idle_timeout": "soon"}}, "limits.idle_timeout: must be a non-negative number"),
        ({"limits": {"max_connections_per_ip": -1}}, "limits.max_connections_per_ip: must be a non-negative"),
        ({"smtp": {"max_recipients": 10}}, "smtp.max_recipients: RFC 5321"),
        ({"smtp": {"processes": 0}}, "smtp.processes: must be from 1 to 64"),
        ({"storage": {"fsync": "yes"}}, "storage.fsync: must be true or false"),
        ({"tls": {"cert": "/nonexistent.pem"}}, "tls.cert: cert and key must be given together"),
        ({"tls": {"cert": "/nonexistent.pem", "key": "/k"}}, "tls.cert: no such file"),
        ({"listen": 5}, "listen: must be a table"),
        ({"log": {"level": "LOUD"}}, "log.level: must be one of"),
    ],
)
def test_bad_values_are_refused_with_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping(raw)
    assert str(error.value).startswith(message)


def test_broken_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[listen\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load(broken)
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "absent.toml")


def test_host_port_forms() -> None:
    assert parse_host_port("127.0.0.1:25") == ("127.0.0.1", 25)
    assert parse_host_port("[::1]:143") == ("::1", 143)
    assert parse_host_port(":25") == ("", 25)


def test_docs_are_generated_from_the_code() -> None:
    assert DOCS.read_text() == config.render_docs(), "run: .venv/bin/pochta config docs > docs/config.md"
