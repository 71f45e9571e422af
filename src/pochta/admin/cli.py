"""`pochta`: run the server and manage domains, users, aliases and mailboxes.

Every management command opens the store named by the config (the same SQLite file a running server
uses; WAL lets both work at once), does one thing, and exits non-zero with one clear line on bad input.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from pochta import config as config_module
from pochta.accounts import PasswordError, hash_password, parse_size
from pochta.admin import archive, retention
from pochta.mail.address import AddressError, normalize_domain, parse_address
from pochta.store.api import DkimKey, Store, StoreError

T = TypeVar("T")
console = Console()


def _fail(message: str) -> NoReturn:
    click.echo(f"pochta: {message}", err=True)
    sys.exit(1)


def _config(ctx: click.Context) -> config_module.Config:
    cfg = ctx.obj
    assert isinstance(cfg, config_module.Config)
    return cfg


def _run(ctx: click.Context, action: Callable[[Store], Awaitable[T]]) -> T:
    from pochta.app import open_store

    async def main() -> T:
        store = await open_store(_config(ctx))
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        _fail(str(exc))


def _address(text: str) -> str:
    try:
        return str(parse_address(text))
    except AddressError as exc:
        _fail(f"{text!r}: {exc}")


def _alias_address(text: str) -> str:
    """An alias address, or ``@domain`` for the domain's catch-all."""
    if text.startswith("@"):
        try:
            return "@" + normalize_domain(text[1:])
        except AddressError as exc:
            _fail(f"{text!r}: {exc}")
    return _address(text)


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        _fail("no terminal to ask for the password; use --password-stdin")
    return password


def _hash(password: str) -> tuple[str, Any]:
    try:
        return hash_password(password)
    except PasswordError as exc:
        _fail(str(exc))


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=config_module.ENV_VAR,
    help="TOML config file (default: $POCHTA_CONFIG, else built-in defaults)",
)
@click.version_option(package_name="pochta")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Pochta, a complete mail server in one process."""
    if ctx.invoked_subcommand == "mx-process":  # its config comes from the main process, as it is running
        return
    try:
        ctx.obj = config_module.load(config_path)
    except config_module.ConfigError as exc:
        _fail(f"config: {exc}")


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run every configured listener until SIGTERM or SIGINT."""
    from pochta.app import run_server

    sys.exit(run_server(_config(ctx)))


@cli.command("mx-process", hidden=True)
@click.option("--fds", required=True, help="the listening sockets' file descriptors, comma-separated")
def mx_process(fds: str) -> None:
    """One extra process for the MX port, started by `pochta serve` with [smtp] processes > 1."""
    from pochta.app import run_mx_process

    sys.exit(run_mx_process([int(fd) for fd in fds.split(",")]))


@cli.command()
@click.pass_context
def localserve(ctx: click.Context) -> None:
    """Run for local use: with no domain yet, create me@localhost with a random password and say how to connect."""
    from pochta.app import run_server, seed_local_account

    _run(ctx, lambda store: seed_local_account(store, _config(ctx), echo=click.echo))
    sys.exit(run_server(_config(ctx)))


@cli.group("config")
def config_group() -> None:
    """Check the config or print its reference."""


@config_group.command("docs")
def config_docs() -> None:
    """Print docs/config.md (generated from the code)."""
    click.echo(config_module.render_docs(), nl=False)


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Load the config and report it valid (errors exit non-zero with the key's name)."""
    click.echo(f"config valid; hostname={_config(ctx).hostname} data_dir={_config(ctx).data_dir}")


# ---- domains -----------------------------------------------------------------------------------------


@cli.group()
def domain() -> None:
    """Mail domains served here."""


@domain.command("add")
@click.argument("name")
@click.pass_context
def domain_add(ctx: click.Context, name: str) -> None:
    """Serve mail for NAME."""
    try:
        normalized = normalize_domain(name)
    except AddressError as exc:
        _fail(f"{name!r}: {exc}")
    if normalized.startswith("["):
        _fail(f"{name!r}: an address literal cannot be a mail domain")
    _run(ctx, lambda store: store.add_domain(normalized))
    click.echo(f"domain {normalized} added")


@domain.command("remove")
@click.argument("name")
@click.pass_context
def domain_remove(ctx: click.Context, name: str) -> None:
    """Stop serving NAME (it must have no accounts left)."""
    try:
        normalized = normalize_domain(name)
    except AddressError as exc:
        _fail(f"{name!r}: {exc}")
    _run(ctx, lambda store: store.remove_domain(normalized))
    click.echo(f"domain {normalized} removed")


@domain.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def domain_list(ctx: click.Context, as_json: bool) -> None:
    """List the domains served here."""
    domains = _run(ctx, lambda store: store.list_domains())
    if as_json:
        click.echo(json.dumps([d.name for d in domains]))
        return
    for item in domains:
        click.echo(item.name)


# ---- users -------------------------------------------------------------------------------------------


@cli.group()
def user() -> None:
    """Accounts: a login, a password and mailboxes."""


@user.command("add")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.option("--quota", "quota", default="0", help="storage quota, e.g. 2G (0: no limit)")
@click.pass_context
def user_add(ctx: click.Context, address: str, password_stdin: bool, quota: str) -> None:
    """Create an account with the standard mailboxes."""
    normalized = _address(address)
    try:
        quota_bytes = parse_size(quota)
    except ValueError as exc:
        _fail(str(exc))
    password_hash, scram = _hash(_read_password(from_stdin=password_stdin))
    _run(
        ctx,
        lambda store: store.add_account(normalized, password_hash=password_hash, scram=scram, quota_bytes=quota_bytes),
    )
    click.echo(f"user {normalized} added")


@user.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.pass_context
def user_passwd(ctx: click.Context, address: str, password_stdin: bool) -> None:
    """Set a new password."""
    normalized = _address(address)
    password_hash, scram = _hash(_read_password(from_stdin=password_stdin))
    _run(ctx, lambda store: store.set_password(normalized, password_hash=password_hash, scram=scram))
    click.echo(f"password of {normalized} changed")


@user.command("remove")
@click.argument("address")
@click.pass_context
def user_remove(ctx: click.Context, address: str) -> None:
    """Delete an account and all its mail."""
    normalized = _address(address)
    _run(ctx, lambda store: store.remove_account(normalized))
    click.echo(f"user {normalized} removed")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """List accounts with their storage use."""
    accounts = _run(ctx, lambda store: store.list_accounts())
    if as_json:
        rows = [
            {
                "address": a.address,
                "quota_bytes": a.quota_bytes,
                "used_bytes": a.used_bytes,
                "created": a.created.isoformat(),
            }
            for a in accounts
        ]
        click.echo(json.dumps(rows))
        return
    table = Table("address", "used", "quota", "created")
    for a in accounts:
        quota = _human(a.quota_bytes) if a.quota_bytes else "none"
        table.add_row(a.address, _human(a.used_bytes), quota, a.created.date().isoformat())
    console.print(table)


@user.command("quota")
@click.argument("address")
@click.option("--storage", required=True, help="storage quota, e.g. 2G (0: no limit)")
@click.pass_context
def user_quota(ctx: click.Context, address: str, storage: str) -> None:
    """Set an account's storage quota."""
    normalized = _address(address)
    try:
        quota_bytes = parse_size(storage)
    except ValueError as exc:
        _fail(str(exc))
    _run(ctx, lambda store: store.set_quota(normalized, quota_bytes=quota_bytes))
    click.echo(f"quota of {normalized} set to {_human(quota_bytes) if quota_bytes else 'none'}")


# ---- aliases -----------------------------------------------------------------------------------------


@cli.group()
def alias() -> None:
    """Aliases and distribution lists (ADDRESS @domain is the domain's catch-all)."""


@alias.command("add")
@click.argument("address")
@click.argument("targets", nargs=-1, required=True)
@click.pass_context
def alias_add(ctx: click.Context, address: str, targets: tuple[str, ...]) -> None:
    """Deliver mail for ADDRESS to every TARGET (local or external)."""
    normalized = _alias_address(address)
    resolved = [_address(target) for target in targets]
    _run(ctx, lambda store: store.add_alias(normalized, resolved))
    click.echo(f"alias {normalized} → {', '.join(resolved)}")


@alias.command("remove")
@click.argument("address")
@click.pass_context
def alias_remove(ctx: click.Context, address: str) -> None:
    """Remove an alias."""
    normalized = _alias_address(address)
    _run(ctx, lambda store: store.remove_alias(normalized))
    click.echo(f"alias {normalized} removed")


@alias.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def alias_list(ctx: click.Context, as_json: bool) -> None:
    """List aliases and their targets."""
    aliases = _run(ctx, lambda store: store.list_aliases())
    if as_json:
        click.echo(json.dumps([{"address": a.address, "targets": list(a.targets)} for a in aliases]))
        return
    for item in aliases:
        click.echo(f"{item.address} → {', '.join(item.targets)}")


# ---- mailboxes ---------------------------------------------------------------------------------------


@cli.group()
def mailbox() -> None:
    """An account's folders."""


@mailbox.command("list")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def mailbox_list(ctx: click.Context, address: str, as_json: bool) -> None:
    """List an account's mailboxes with message counts."""
    normalized = _address(address)

    async def action(store: Store) -> list[Any]:
        account = await store.get_account(normalized)
        if account is None:
            raise StoreError(f"no account {normalized}")
        return await store.list_mailboxes(account.id)

    mailboxes = _run(ctx, action)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "special_use": m.special_use,
                        "messages": m.messages,
                        "unseen": m.unseen,
                        "size": m.size,
                        "subscribed": m.is_subscribed,
                    }
                    for m in mailboxes
                ]
            )
        )
        return
    table = Table("mailbox", "special-use", "messages", "unseen", "size")
    for item in mailboxes:
        table.add_row(item.name, item.special_use or "", str(item.messages), str(item.unseen), _human(item.size))
    console.print(table)


# ---- DKIM --------------------------------------------------------------------------------------------


@cli.group()
def dkim() -> None:
    """DKIM signing keys (outgoing mail is signed for its From: domain)."""


@dkim.command("generate")
@click.argument("domain")
@click.option("--selector", default=None, help="DNS selector (default: the date and the algorithm's letter)")
@click.option(
    "--algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa", help="rsa-sha256 (2048 bits) or ed25519"
)
@click.pass_context
def dkim_generate(ctx: click.Context, domain: str, selector: str | None, algorithm: str) -> None:
    """Make a key for DOMAIN and print the DNS TXT record to publish."""
    from datetime import UTC, datetime

    from pochta.mailauth.dkim import Algorithm, generate

    try:
        normalized = normalize_domain(domain)
    except AddressError as exc:
        _fail(f"{domain!r}: {exc}")
    now = datetime.now(UTC)
    chosen = selector or f"{now:%Y%m%d}{algorithm[0]}"
    if not chosen.replace("-", "").replace(".", "").isalnum():
        _fail(f"{chosen!r}: a selector is letters, digits, '-' and '.'")
    key = generate(normalized, chosen, Algorithm.RSA if algorithm == "rsa" else Algorithm.ED25519)
    stored = DkimKey(
        domain=key.domain,
        selector=key.selector,
        algorithm=key.algorithm.value,
        private_key=key.private_key,
        public_key=key.public_key,
        created=now,
    )
    _run(ctx, lambda store: store.add_dkim_key(stored))
    click.echo(f'{key.dns_name}. TXT "{key.dns_record}"')


@dkim.command("list")
@click.pass_context
def dkim_list(ctx: click.Context) -> None:
    """List the DKIM keys with their DNS records."""
    for key in _run(ctx, lambda store: store.dkim_keys()):
        kind = "rsa" if key.algorithm == "rsa-sha256" else "ed25519"
        click.echo(f'{key.selector}._domainkey.{key.domain}. TXT "v=DKIM1; k={kind}; p={key.public_key}"')


@dkim.command("remove")
@click.argument("domain")
@click.argument("selector")
@click.pass_context
def dkim_remove(ctx: click.Context, domain: str, selector: str) -> None:
    """Stop signing with SELECTOR's key for DOMAIN."""
    _run(ctx, lambda store: store.remove_dkim_key(domain.lower(), selector))
    click.echo(f"DKIM key {selector} of {domain.lower()} removed")


# ---- queue -------------------------------------------------------------------------------------------


@cli.group()
def queue() -> None:
    """The outbound queue."""


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def queue_list(ctx: click.Context, as_json: bool) -> None:
    """Queued messages with their destination, attempts and next try."""
    entries = _run(ctx, lambda store: store.queue_entries())
    if as_json:
        click.echo(json.dumps([_queue_json(e) for e in entries]))
        return
    table = Table("id", "domain", "recipients", "size", "attempts", "next attempt", "state", "last error")
    for e in entries:
        pending = [r.address for r in e.recipients if r.state == "pending"]
        state = "held" if e.is_held else "leased" if e.lease_owner else "queued"
        table.add_row(
            str(e.id),
            e.domain,
            ", ".join(pending),
            _human(e.size),
            str(e.attempts),
            e.next_attempt.isoformat(timespec="seconds"),
            state,
            e.last_error or "",
        )
    console.print(table)


@queue.command("show")
@click.argument("queue_id", type=int)
@click.pass_context
def queue_show(ctx: click.Context, queue_id: int) -> None:
    """One entry, with its envelope and each recipient's state."""
    entry = _run(ctx, lambda store: store.queue_entry(queue_id))
    if entry is None:
        _fail(f"no queue entry {queue_id}")
    click.echo(json.dumps(_queue_json(entry), indent=2))


def _queue_action(name: str, help_text: str) -> None:
    @queue.command(name, help=help_text)
    @click.argument("queue_id", type=int)
    @click.pass_context
    def action(ctx: click.Context, queue_id: int) -> None:
        from datetime import UTC, datetime

        async def run(store: Store) -> None:
            if name == "retry":
                await store.retry_now(queue_id, now=datetime.now(UTC))
            elif name == "delete":
                await store.delete_queue_entry(queue_id)
            else:
                await store.set_held(queue_id, is_held=name == "hold")

        _run(ctx, run)
        click.echo(f"queue entry {queue_id}: {name} done")


for _name, _help in (
    ("retry", "Try ID again now (and release it if held)."),
    ("delete", "Drop ID without a bounce."),
    ("hold", "Keep ID from being tried until released."),
    ("release", "Let a held ID be tried again."),
):
    _queue_action(_name, _help)


def _queue_json(entry: Any) -> dict[str, Any]:
    from pochta.mail.envelope import Envelope

    envelope = Envelope.loads(entry.envelope)
    return {
        "id": entry.id,
        "domain": entry.domain,
        "from": envelope.mail_from,
        "size": entry.size,
        "created": entry.created.isoformat(),
        "next_attempt": entry.next_attempt.isoformat(),
        "attempts": entry.attempts,
        "held": entry.is_held,
        "last_error": entry.last_error,
        "recipients": [{"address": r.address, "state": str(r.state), "reply": r.reply} for r in entry.recipients],
    }


def _human(octets: int) -> str:
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


from pochta.admin.sieve import sieve, user_forward, user_vacation  # noqa: E402  (they use the helpers above)

cli.add_command(sieve)
user.add_command(user_vacation)
user.add_command(user_forward)
retention.register(cli)
archive.register(cli)


def main() -> None:
    cli(prog_name="pochta")


from pochta.admin import spam as _spam  # noqa: E402, F401  (registers `pochta spam`)
