"""The node's configuration: one TOML file, frozen dataclasses, defaults that run with no file at all.

Every field carries its documentation in ``metadata["doc"]``; ``docs/config.md`` is generated from it
(`pochta config docs`). Unknown keys and bad values are refused with the key's dotted name and the reason.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "POCHTA_CONFIG"
_T = typing.TypeVar("_T")


class ConfigError(ValueError):
    """A configuration value we refuse; the message names the key."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


def _default_hostname() -> str:
    return socket.getfqdn() or "localhost"


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    smtp: tuple[str, ...] = field(default=("127.0.0.1:2525",), metadata=_doc("MX (port 25 in production)"))
    submission: tuple[str, ...] = field(
        default=("127.0.0.1:2587",), metadata=_doc("submission with STARTTLS (587 in production)")
    )
    submissions: tuple[str, ...] = field(
        default=("127.0.0.1:2465",), metadata=_doc("submission over implicit TLS (465 in production)")
    )
    imap: tuple[str, ...] = field(default=("127.0.0.1:2143",), metadata=_doc("IMAP with STARTTLS (143)"))
    imaps: tuple[str, ...] = field(default=("127.0.0.1:2993",), metadata=_doc("IMAP over implicit TLS (993)"))
    pop3: tuple[str, ...] = field(default=("127.0.0.1:2110",), metadata=_doc("POP3 with STLS (110)"))
    pop3s: tuple[str, ...] = field(default=("127.0.0.1:2995",), metadata=_doc("POP3 over implicit TLS (995)"))
    managesieve: tuple[str, ...] = field(default=("127.0.0.1:4190",), metadata=_doc("ManageSieve (4190)"))
    http: tuple[str, ...] = field(default=("127.0.0.1:8080",), metadata=_doc("web admin and JSON API"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    cert: str = field(
        default="",
        metadata=_doc("PEM certificate chain; empty: a self-signed one is made on first start and kept"),
    )
    key: str = field(default="", metadata=_doc("PEM private key for `cert`"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_connections_per_ip: int = field(
        default=50,
        metadata=_doc("open connections one client IP may hold, per protocol (on port 25, per MX process)"),
    )
    max_connections: int = field(
        default=10000, metadata=_doc("open connections in all, per protocol (on port 25, per MX process)")
    )
    idle_timeout: float = field(
        default=300.0, metadata=_doc("seconds a session may stay silent (RFC 5321 §4.5.3.2.7: 5 min)")
    )
    shutdown_grace: float = field(default=30.0, metadata=_doc("seconds open sessions get to finish after SIGTERM"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Smtp:
    max_message_size: int = field(
        default=50 * 2**20, metadata=_doc("largest message in octets, advertised with SIZE (RFC 1870)")
    )
    max_recipients: int = field(
        default=1000, metadata=_doc("recipients per message (RFC 5321 §4.5.3.1.8: at least 100)")
    )
    max_errors: int = field(default=20, metadata=_doc("bad commands before a session is closed with 421"))
    max_header_size: int = field(default=1 * 2**20, metadata=_doc("largest header block in octets"))
    processes: int = field(
        default=1,
        metadata=_doc(
            "processes that accept on the MX port (listen.smtp): 1 is the main process alone; each one more "
            "is a process of its own on another core, for more messages per second (see README)"
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    port: int = field(default=25, metadata=_doc("port of remote mail servers (RFC 5321 §4.5.4.2); change for tests"))
    concurrency: int = field(default=20, metadata=_doc("deliveries under way at once"))
    per_domain: int = field(
        default=20, metadata=_doc("deliveries under way at once to one destination domain (Postfix's default too)")
    )
    starttls: bool = field(default=True, metadata=_doc("use STARTTLS whenever the remote offers it (unverified)"))
    smarthost: str = field(
        default="", metadata=_doc('"host:port" to relay all outgoing mail through, instead of MX lookups')
    )
    smarthost_tls: str = field(
        default="starttls", metadata=_doc('"starttls" (port 587) or "implicit" (port 465); TLS is always required')
    )
    smarthost_user: str = field(default="", metadata=_doc("login at the smarthost (AUTH PLAIN); empty: none"))
    smarthost_password_file: str = field(
        default="", metadata=_doc("file whose first line is the smarthost password (kept out of this file)")
    )
    mta_sts: bool = field(default=True, metadata=_doc("honour remote domains' MTA-STS policies (RFC 8461)"))
    mta_sts_port: int = field(default=443, metadata=_doc("HTTPS port for MTA-STS policy fetches; change for tests"))
    ca_file: str = field(
        default="", metadata=_doc("extra CA certificates (PEM) trusted when a remote's TLS must be verified")
    )
    lease_seconds: float = field(
        default=900.0,
        metadata=_doc("how long a claimed message is a worker's; after a crash it is retried once this passes"),
    )
    connection_cache_time: float = field(
        default=2.0,
        metadata=_doc("seconds an idle connection is kept for the next message to the same host; 0: QUIT at once"),
    )
    connection_reuse_time: float = field(
        default=300.0, metadata=_doc("seconds after which a kept connection is not used for another message")
    )
    connection_reuse_count: int = field(
        default=100, metadata=_doc("messages sent over one connection at most (1: a new connection for each)")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Dns:
    nameservers: tuple[str, ...] = field(
        default=(), metadata=_doc('resolvers as "host:port"; empty: the system\'s /etc/resolv.conf')
    )
    timeout: float = field(default=5.0, metadata=_doc("seconds for one lookup"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    enabled: bool = field(
        default=True,
        metadata=_doc("check SPF, DKIM, DMARC and ARC on the MX and add an Authentication-Results field"),
    )
    dmarc_reject: bool = field(
        default=True,
        metadata=_doc("refuse (550 5.7.1) mail failing DMARC under p=reject; false: deliver it to Junk"),
    )
    trusted_arc_sealers: tuple[str, ...] = field(
        default=(),
        metadata=_doc("ARC sealer domains (e.g. mailing list hosts) whose passing ARC chain excuses a DMARC failure"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Antivirus:
    clamd: str = field(
        default="",
        metadata=_doc(
            'clamd\'s socket: "unix:/run/clamav/clamd.ctl" or "tcp:host:port"; empty: no virus scan. '
            "Every message on the MX and on submission is scanned"
        ),
    )
    timeout: float = field(
        default=60.0, metadata=_doc("seconds for one scan, connecting included, before clamd counts as down")
    )
    connect_timeout: float = field(default=5.0, metadata=_doc("seconds to connect to clamd"))
    fail_open: bool = field(
        default=False,
        metadata=_doc("accept mail unscanned (virustest 0) while clamd is down or slow, instead of 451 4.7.1"),
    )
    max_scan_size: int = field(
        default=25 * 2**20,
        metadata=_doc(
            "largest message sent to clamd, in octets; keep it at or below clamd's StreamMaxLength "
            "(25M in Debian's clamd.conf); 0: no limit of our own"
        ),
    )
    on_oversize: str = field(
        default="accept",
        metadata=_doc(
            'a message over max_scan_size or clamd\'s StreamMaxLength: "accept" unscanned (virustest 0, as '
            'clamav-milter and rspamd do), "tempfail" (451 4.3.4) or "reject" (552 5.3.4)'
        ),
    )


ON_OVERSIZE = ("accept", "tempfail", "reject")


@dataclass(frozen=True, slots=True, kw_only=True)
class Spam:
    enabled: bool = field(default=True, metadata=_doc("score mail arriving on the MX (docs/spam.md)"))
    junk_threshold: float = field(
        default=5.0, metadata=_doc("score from which a message is delivered to the recipient's Junk mailbox")
    )
    reject_threshold: float = field(
        default=15.0, metadata=_doc("score from which a message is refused with 550 5.7.1; above junk_threshold")
    )
    dnsbl: tuple[str, ...] = field(
        default=(), metadata=_doc('DNS blocklists for the connecting IP, e.g. ["zen.spamhaus.org"]; empty: none')
    )
    uribl: tuple[str, ...] = field(
        default=(), metadata=_doc('blocklists for domains linked in the body, e.g. ["multi.uribl.com"]; empty: none')
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Storage:
    fsync: bool = field(
        default=True,
        metadata=_doc("fsync blobs and commits before acknowledging; off only for throwaway test servers"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Sieve:
    max_scripts: int = field(default=20, metadata=_doc("Sieve scripts one account may keep; 0: no limit"))
    max_script_size: int = field(
        default=256 * 2**10, metadata=_doc("largest Sieve script in octets (ManageSieve answers QUOTA/MAXSIZE)")
    )
    max_redirects: int = field(
        default=4, metadata=_doc("redirects one script may make for one message (advertised as MAXREDIRECTS)")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    archive_after_days: int = field(
        default=0, metadata=_doc("move INBOX messages older than this into Archive; 0: off (policies may set it)")
    )
    archive_per_year: bool = field(default=False, metadata=_doc("archive into Archive/<year> instead of Archive"))
    trash_days: int = field(default=30, metadata=_doc("expunge messages kept this long in Trash; 0: never"))
    junk_days: int = field(default=30, metadata=_doc("expunge messages kept this long in Junk; 0: never"))
    undelete_days: int = field(
        default=30, metadata=_doc("expunged messages stay recoverable (`pochta restore`) this long; 0: not kept")
    )
    quota_warning_percent: int = field(
        default=90, metadata=_doc("usage at which a user gets one warning message; 0: no warnings")
    )
    interval: float = field(default=3600.0, metadata=_doc("seconds between runs of the retention task in serve"))
    batch: int = field(default=500, metadata=_doc("messages moved or expunged per transaction"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Log:
    level: str = field(default="INFO", metadata=_doc("DEBUG, INFO, WARNING or ERROR"))
    trace: tuple[str, ...] = field(
        default=(), metadata=_doc("protocols whose transcripts are logged, e.g. ['smtp', 'imap']")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    hostname: str = field(default_factory=_default_hostname, metadata=_doc("default: the machine's FQDN"))
    data_dir: str = field(
        default="./pochta-data", metadata=_doc("database, blobs, queue and TLS files; relative to the cwd")
    )
    listen: Listen = field(default_factory=Listen)
    tls: Tls = field(default_factory=Tls)
    limits: Limits = field(default_factory=Limits)
    smtp: Smtp = field(default_factory=Smtp)
    storage: Storage = field(default_factory=Storage)
    outbound: Outbound = field(default_factory=Outbound)
    dns: Dns = field(default_factory=Dns)
    auth: Auth = field(default_factory=Auth)
    antivirus: Antivirus = field(default_factory=Antivirus)
    spam: Spam = field(default_factory=Spam)
    log: Log = field(default_factory=Log)
    sieve: Sieve = field(default_factory=Sieve)
    retention: Retention = field(default_factory=Retention)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file named by ``path`` or $POCHTA_CONFIG; no file at all gives the defaults."""
    chosen = path if path is not None else os.environ.get(ENV_VAR)
    if not chosen:
        return Config()
    try:
        with open(chosen, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {chosen}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {chosen}: {exc}") from exc
    return from_mapping(raw)


def from_mapping(raw: Mapping[str, Any]) -> Config:
    config = _build(Config, raw, prefix="")
    _check(config)
    return config


def _build(cls: type[_T], raw: Mapping[str, Any], *, prefix: str) -> _T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"{name}: unknown key")
        values[key] = _coerce(hints[key], value, name=name)
    return cls(**values)


def _coerce(hint: Any, value: Any, *, name: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: must be a table")
        return _build(hint, value, prefix=f"{name}.")
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{name}: must be a list of strings")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}: must be a non-negative integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{name}: must be a non-negative number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: must be a string")
        return value
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such field yet
        raise ConfigError(f"{name}: unsupported type")
    raise ConfigError(f"{name}: unsupported type {hint!r}")  # pragma: no cover


def _check(config: Config) -> None:
    if not config.hostname or " " in config.hostname:
        raise ConfigError("hostname: must be a domain name")
    for f in dataclasses.fields(config.listen):
        for item in getattr(config.listen, f.name):
            try:
                parse_host_port(item)
            except ValueError as exc:
                raise ConfigError(f"listen.{f.name}: {exc}") from exc
    if config.spam.reject_threshold <= config.spam.junk_threshold:
        raise ConfigError("spam.reject_threshold: must be above spam.junk_threshold")
    if bool(config.tls.cert) != bool(config.tls.key):
        raise ConfigError("tls.cert: cert and key must be given together")
    for key in ("cert", "key"):
        value = getattr(config.tls, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"tls.{key}: no such file {value}")
    if config.log.level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"log.level: must be one of {', '.join(sorted(_LOG_LEVELS))}")
    if config.sieve.max_script_size < 1 or config.sieve.max_scripts < 0 or config.sieve.max_redirects < 0:
        raise ConfigError("sieve: max_script_size must be positive, max_scripts and max_redirects not negative")
    if config.limits.max_connections_per_ip < 1:
        raise ConfigError("limits.max_connections_per_ip: must be at least 1")
    if not 1 <= config.smtp.processes <= 64:
        raise ConfigError("smtp.processes: must be from 1 to 64")
    for server in config.dns.nameservers:
        try:
            parse_host_port(server if server.rpartition(":")[2].isdigit() else f"{server}:53")
        except ValueError as exc:
            raise ConfigError(f"dns.nameservers: {exc}") from exc
    outbound = config.outbound
    if outbound.smarthost:
        try:
            parse_host_port(outbound.smarthost)
        except ValueError as exc:
            raise ConfigError(f"outbound.smarthost: {exc}") from exc
    if outbound.smarthost_tls not in ("starttls", "implicit"):
        raise ConfigError('outbound.smarthost_tls: must be "starttls" or "implicit"')
    if outbound.smarthost_password_file and not Path(outbound.smarthost_password_file).is_file():
        raise ConfigError(f"outbound.smarthost_password_file: no such file {outbound.smarthost_password_file}")
    if outbound.smarthost_user and not outbound.smarthost_password_file:
        raise ConfigError("outbound.smarthost_user: needs smarthost_password_file")
    if outbound.ca_file and not Path(outbound.ca_file).is_file():
        raise ConfigError(f"outbound.ca_file: no such file {outbound.ca_file}")
    if not 0 < config.outbound.port < 65536:
        raise ConfigError("outbound.port: must be a port number")
    if config.outbound.concurrency < 1 or config.outbound.per_domain < 1:
        raise ConfigError("outbound.concurrency: it and per_domain must be at least 1")
    if config.retention.batch < 1 or config.retention.interval < 1:
        raise ConfigError("retention.batch: it must be at least 1, and interval at least 1 second")
    if config.retention.quota_warning_percent > 100:
        raise ConfigError("retention.quota_warning_percent: must be 0 to 100")
    if config.smtp.max_recipients < 100:
        raise ConfigError("smtp.max_recipients: RFC 5321 §4.5.3.1.8 requires at least 100")
    antivirus = config.antivirus
    if antivirus.clamd:
        try:
            parse_socket_address(antivirus.clamd)
        except ValueError as exc:
            raise ConfigError(f"antivirus.clamd: {exc}") from exc
    if antivirus.on_oversize not in ON_OVERSIZE:
        raise ConfigError(f"antivirus.on_oversize: must be one of {', '.join(ON_OVERSIZE)}")
    if antivirus.timeout <= 0 or antivirus.connect_timeout <= 0:
        raise ConfigError("antivirus.timeout: it and connect_timeout must be more than 0")


def parse_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:25"``, ``"[::1]:25"`` or ``":25"`` (all addresses) → (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    port = int(port_text)
    if not 0 <= port < 65536:  # 0: the system picks a free port (tests)
        raise ValueError(f"{text!r}: port out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def parse_socket_address(text: str) -> str | tuple[str, int]:
    """``"unix:/run/clamav/clamd.ctl"`` → the socket's path; ``"tcp:127.0.0.1:3310"`` → (host, port)."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest.startswith("/"):
        return rest
    if kind == "tcp":
        try:
            host, port = parse_host_port(rest)
        except ValueError:
            host, port = "", 0
        if host and port:
            return host, port
    raise ValueError(f'{text!r} is neither "unix:/absolute/path" nor "tcp:host:port"')


def render_docs() -> str:
    """Markdown reference of every key, generated from the dataclasses above."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `src/pochta/config.py` by `pochta config docs`; do not edit by hand.",
        "",
        "Pochta reads one TOML file: `pochta --config FILE ...` or `$POCHTA_CONFIG`. With no file the",
        "defaults below run a usable server on unprivileged loopback ports.",
        "Unknown keys and bad values stop the server at start with the key's name and the reason.",
        "",
    ]
    _render_section(Config(hostname="(machine FQDN)"), "", lines)
    return "\n".join(lines) + "\n"


def _render_section(obj: Any, prefix: str, lines: list[str]) -> None:
    title = f"[{prefix.rstrip('.')}]" if prefix else "top level"
    rows = []
    subsections = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            subsections.append((f.name, value))
            continue
        rows.append(f"| `{f.name}` | `{_toml_value(value)}` | {f.metadata.get('doc', '')} |")
    lines += [f"## {title}", "", "| key | default | meaning |", "|---|---|---|", *rows, ""]
    for name, value in subsections:
        _render_section(value, f"{prefix}{name}.", lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
