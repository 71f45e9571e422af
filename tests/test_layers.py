"""The import rules of docs/architecture.md: arrows point from I/O code toward pure code."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pochta"

# module prefix → pochta modules it may import (prefixes); checked longest prefix first
ALLOWED: dict[str, tuple[str, ...]] = {
    "mail": ("mail",),
    "config": (),
    "log": (),
    "proto": ("proto", "mail"),
    "dns": ("dns", "mail", "config"),
    "net": ("net", "mail", "config"),
    "tls": (),
    "store.api": ("mail",),
    "store": ("store", "mail"),
    "accounts": ("store.api", "mail", "proto.sasl"),
    "smtpd": (
        "smtpd",
        "proto.smtp",
        "proto.sasl",
        "net",
        "store.api",
        "accounts",
        "mail",
        "config",
        "delivery",
        "mailauth",
        "filters",
        "queue",
        "sieving",
    ),
    "mailauth": ("mailauth", "mail", "dns"),
    "filters": ("filters", "mail", "mailauth", "dns", "proto.smtp.replies", "store.api"),  # spam models: the store
    "filters.sieve": ("filters.sieve", "mail"),  # pure: parse and run, no I/O
    "filters.clamav": ("filters", "net", "proto.smtp.replies"),  # a clamd client: its socket comes from net
    "imapd": ("imapd", "proto.imap", "proto.sasl", "net", "store.api", "accounts", "mail", "config", "delivery"),
    "pop3d": ("proto.pop3", "proto.sasl", "net", "store.api", "accounts", "mail", "config"),
    "queue": ("queue", "store.api", "outbound", "proto.smtp.replies", "proto.smtp", "mail"),
    "outbound": ("outbound", "proto.smtp", "dns", "net", "mail"),
    "delivery": ("store.api", "accounts", "mail", "filters", "queue"),
    "sieving": ("delivery", "store.api", "accounts", "mail", "filters", "queue", "proto.smtp.replies"),
    "sieved": ("proto.managesieve", "proto.sasl", "net", "store.api", "accounts", "mail", "config", "filters.sieve"),
    "archive": ("archive", "store.api", "accounts", "mail", "config", "delivery", "proto.imap.utf7"),
    "admin": (
        "admin",
        "accounts",
        "mail",
        "mailauth",
        "store.api",
        "config",
        "app",
        "filters",
        "archive",
    ),  # spam, sieve
    "mx_processes": ("config",),  # starts and watches processes; knows the config, nothing else
    "app": ("",),
}
PURE_FORBIDDEN = {"asyncio", "socket", "ssl", "logging", "selectors"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _is_module(name: str) -> bool:
    if not name.startswith("pochta."):
        return False
    path = SRC.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _rule(module: str) -> tuple[str, ...] | None:
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return ALLOWED[prefix]
    return None


def test_every_module_follows_the_import_rules() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        if module in ("", "__main__"):
            continue
        allowed = _rule(module)
        assert allowed is not None, f"{module}: add it to the import rules"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pochta.proto import sasl` imports the module pochta.proto.sasl
                names = [
                    f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}") else node.module
                    for alias in node.names
                ]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                top = name.split(".")[0]
                if (
                    module.split(".")[0] in ("mail", "proto") or module.startswith("filters.sieve")
                ) and top in PURE_FORBIDDEN:
                    problems.append(f"{module} imports {name}: pure code does no I/O")
                if not name.startswith("pochta.") or name == "pochta":
                    continue
                target = name.removeprefix("pochta.")
                if not any(target == a or target.startswith(a + ".") or a == "" for a in allowed):
                    problems.append(f"{module} imports {target}")
    assert problems == []
