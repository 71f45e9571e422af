"""`pochta retention`, `pochta archive run`, `pochta restore` and `pochta journal` (docs/retention.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from pochta import config as config_module
from pochta.archive.journal import write_mbox
from pochta.archive.retention import Report, archiving
from pochta.archive.undelete import recoverable, restore
from pochta.mail.address import AddressError, normalize_domain, parse_address
from pochta.store.api import (
    HIERARCHY_SEPARATOR,
    INBOX,
    Blobs,
    JournalQuery,
    RetentionAction,
    RetentionPolicy,
    Store,
    StoreError,
)

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"pochta: {message}", err=True)
    sys.exit(1)


def _config(ctx: click.Context) -> config_module.Config:
    cfg = ctx.obj
    assert isinstance(cfg, config_module.Config)
    return cfg


def _run(ctx: click.Context, action: Callable[[Store, Blobs], Awaitable[T]]) -> T:
    from pochta.app import open_blobs, open_store

    config = _config(ctx)

    async def main() -> T:
        store = await open_store(config)
        blobs = open_blobs(config)
        try:
            return await action(store, blobs)
        finally:
            await store.close()
            blobs.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        _fail(str(exc))


def _address(text: str) -> str:
    try:
        return str(parse_address(text))
    except AddressError as exc:
        _fail(f"{text!r}: {exc}")


def _domain(text: str) -> str:
    try:
        return normalize_domain(text)
    except AddressError as exc:
        _fail(f"{text!r}: {exc}")


def _target(text: str) -> str:
    """A policy's target: an account address or a domain name, normalised."""
    return _address(text) if "@" in text else _domain(text)


def _day(text: str | None, option: str) -> datetime | None:
    """``YYYY-MM-DD`` (midnight UTC) or a full ISO 8601 time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r}: not a date (YYYY-MM-DD or an ISO 8601 time)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _mailbox(text: str) -> str:
    name = text.strip(HIERARCHY_SEPARATOR)
    if not name:
        _fail(f"--mailbox {text!r}: empty mailbox name")
    return INBOX if name.upper() == INBOX else name


def register(cli: click.Group) -> None:
    for command in (retention, archive, restore_command, journal):
        cli.add_command(command)


# ---- pochta retention ---------------------------------------------------------------------------------


@click.group()
def retention() -> None:
    """Retention policies per domain, account or mailbox (defaults: [retention] in the config)."""


@retention.command("set")
@click.argument("target")
@click.option("--mailbox", "mailbox_name", default=INBOX, show_default=True, help="the mailbox the rule is for")
@click.option("--archive-after", type=click.IntRange(min=0), help="move messages older than N days into Archive")
@click.option("--per-year", is_flag=True, help="with --archive-after: into Archive/<year of the message>")
@click.option("--expunge-after", type=click.IntRange(min=0), help="expunge messages kept N days in the mailbox")
@click.pass_context
def retention_set(
    ctx: click.Context,
    *,
    target: str,
    mailbox_name: str,
    archive_after: int | None,
    per_year: bool,
    expunge_after: int | None,
) -> None:
    """Set the rule for TARGET (a domain, or an account address) and one mailbox; 0 days turns it off."""
    if (archive_after is None) == (expunge_after is None):
        _fail("give one of --archive-after N or --expunge-after N")
    if per_year and archive_after is None:
        _fail("--per-year goes with --archive-after")
    name = _mailbox(mailbox_name)
    if archive_after is not None and (name == "Archive" or name.startswith("Archive" + HIERARCHY_SEPARATOR)):
        _fail(f"{name} is the archive; it cannot be archived into itself")
    policy = RetentionPolicy(
        target=_target(target),
        mailbox=name,
        action=RetentionAction.ARCHIVE if archive_after is not None else RetentionAction.EXPUNGE,
        days=archive_after if archive_after is not None else expunge_after or 0,
        is_per_year=per_year,
    )

    async def action(store: Store, _blobs: Blobs) -> None:
        if policy.scope == "account" and await store.get_account(policy.target) is None:
            raise StoreError(f"no account {policy.target}")
        if policy.scope == "domain" and await store.get_domain(policy.target) is None:
            raise StoreError(f"no domain {policy.target}")
        await store.set_retention_policy(policy)

    _run(ctx, action)
    click.echo(f"{policy.target} {policy.mailbox}: {_describe(policy.action, policy.days, policy.is_per_year)}")


def _describe(action: RetentionAction, days: int, is_per_year: bool) -> str:
    if days == 0:
        return "off"
    if action is RetentionAction.ARCHIVE:
        return f"archive after {days} days" + (" into Archive/<year>" if is_per_year else "")
    return f"expunge after {days} days"


@retention.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def retention_list(ctx: click.Context, as_json: bool) -> None:
    """The policies set, and the config defaults under them."""

    async def action(store: Store, _blobs: Blobs) -> list[RetentionPolicy]:
        return await store.retention_policies()

    policies = _run(ctx, action)
    defaults = _config(ctx).retention
    if as_json:
        rows = [
            {
                "scope": p.scope,
                "target": p.target,
                "mailbox": p.mailbox,
                "action": p.action.value,
                "days": p.days,
                "per_year": p.is_per_year,
            }
            for p in policies
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for p in policies:
        click.echo(f"{p.scope:<8} {p.target:<32} {p.mailbox:<16} {_describe(p.action, p.days, p.is_per_year)}")
    click.echo(
        f"defaults INBOX: {_describe(RetentionAction.ARCHIVE, defaults.archive_after_days, defaults.archive_per_year)}"
        f"; Trash: {_describe(RetentionAction.EXPUNGE, defaults.trash_days, False)}"
        f"; Junk: {_describe(RetentionAction.EXPUNGE, defaults.junk_days, False)}"
        f"; undelete: {defaults.undelete_days} days"
    )


@retention.command("remove")
@click.argument("target")
@click.option("--mailbox", "mailbox_name", default=INBOX, show_default=True)
@click.pass_context
def retention_remove(ctx: click.Context, target: str, mailbox_name: str) -> None:
    """Remove TARGET's rule for the mailbox (the wider rule or the default applies again)."""
    chosen, name = _target(target), _mailbox(mailbox_name)

    async def action(store: Store, _blobs: Blobs) -> None:
        await store.remove_retention_policy(chosen, name)

    _run(ctx, action)
    click.echo(f"removed {chosen} {name}")


# ---- pochta archive run --------------------------------------------------------------------------------


@click.group()
def archive() -> None:
    """Run the retention task (what `pochta serve` does every [retention] interval)."""


@archive.command("run")
@click.option("--dry-run", is_flag=True, help="print what would be moved or expunged; change nothing")
@click.pass_context
def archive_run(ctx: click.Context, dry_run: bool) -> None:
    """Apply the retention rules now, purge the undelete bin and the journal, send quota warnings."""
    config = _config(ctx)

    async def action(store: Store, blobs: Blobs) -> Report:
        built = archiving(config, store, blobs, now=lambda: datetime.now(UTC))
        try:
            return await built.task.run_once(dry_run=dry_run)
        finally:
            built.journal.close()

    report = _run(ctx, action)
    verb = {RetentionAction.ARCHIVE: "archive", RetentionAction.EXPUNGE: "expunge"}
    prefix = "would " if dry_run else ""
    for step in report.steps:
        target = f" -> {step.target}" if step.target else ""
        click.echo(f"{prefix}{verb[step.action]} {step.count} {step.account} {step.mailbox}{target}")
    if not report.steps:
        click.echo(f"{prefix}move or expunge nothing")
    if report.failed:
        click.echo(f"{report.failed} mailboxes could not be done now (see the log); the next run tries again", err=True)
    if not dry_run:
        click.echo(f"undelete bin: {report.undelete_purged} purged; quota warnings: {report.quota_warnings} sent")
    click.echo(f"journal: {report.journal_expired} segments {'would expire' if dry_run else 'expired'}")


# ---- pochta restore --------------------------------------------------------------------------------


@click.command("restore")
@click.argument("address")
@click.option("--since", help="only messages expunged at or after this date (YYYY-MM-DD, UTC)")
@click.option("--mailbox", "mailbox_name", help="only messages expunged from this mailbox")
@click.option("--dry-run", is_flag=True, help="list what would be restored")
@click.pass_context
def restore_command(
    ctx: click.Context, address: str, since: str | None, mailbox_name: str | None, dry_run: bool
) -> None:
    """Put back expunged messages of ADDRESS (kept [retention] undelete_days) into their mailboxes."""
    chosen = _address(address)
    since_time = _day(since, "--since")
    name = _mailbox(mailbox_name) if mailbox_name is not None else None
    if dry_run:

        async def listing(store: Store, _blobs: Blobs) -> None:
            for message in await recoverable(store, chosen, since=since_time, mailbox=name):
                click.echo(
                    f"{message.expunged:%Y-%m-%d %H:%M} {message.mailbox} {message.size} octets"
                    f" (received {message.internal_date:%Y-%m-%d})"
                )

        _run(ctx, listing)
        return

    async def action(store: Store, _blobs: Blobs) -> int:
        return len((await restore(store, chosen, since=since_time, mailbox=name)).placed)

    count = _run(ctx, action)
    click.echo(f"restored {count} messages to {chosen}")


# ---- pochta journal --------------------------------------------------------------------------------


@click.group()
def journal() -> None:
    """The compliance journal: a copy of every message received and sent, per domain."""


@journal.command("enable")
@click.argument("domain")
@click.option("--retention-days", type=click.IntRange(min=0), default=0, help="delete records older (0: keep)")
@click.pass_context
def journal_enable(ctx: click.Context, domain: str, retention_days: int) -> None:
    """Journal every message to or from DOMAIN from now on."""
    name = _domain(domain)

    async def action(store: Store, _blobs: Blobs) -> None:
        if await store.get_domain(name) is None:
            raise StoreError(f"no domain {name}")
        await store.set_journal_domain(name, retention_days=retention_days)

    _run(ctx, action)
    kept = f"{retention_days} days" if retention_days else "for ever"
    click.echo(f"journal enabled for {name}, kept {kept}")


@journal.command("disable")
@click.argument("domain")
@click.pass_context
def journal_disable(ctx: click.Context, domain: str) -> None:
    """Stop journaling DOMAIN (records already written are kept)."""
    name = _domain(domain)

    async def action(store: Store, _blobs: Blobs) -> None:
        await store.remove_journal_domain(name)

    _run(ctx, action)
    click.echo(f"journal disabled for {name}")


@journal.command("list")
@click.pass_context
def journal_list(ctx: click.Context) -> None:
    """Journaled domains and their retention."""

    async def action(store: Store, _blobs: Blobs) -> dict[str, int]:
        return await store.journal_domains()

    for name, days in _run(ctx, action).items():
        click.echo(f"{name} {f'{days} days' if days else 'for ever'}")


def _query_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        (
            click.option("--from", "sender", help="envelope sender address"),
            click.option("--to", "recipient", help="envelope recipient address"),
            click.option("--since", help="received at or after (YYYY-MM-DD, UTC)"),
            click.option("--until", help="received before (YYYY-MM-DD: before that day ends, UTC)"),
            click.option("--domain", help="only this journaled domain's records"),
        )
    ):
        command = option(command)
    return command


def _query(
    sender: str | None, recipient: str | None, since: str | None, until: str | None, domain: str | None
) -> JournalQuery:
    until_time = _day(until, "--until")
    if until is not None and until_time is not None and len(until) == 10:
        until_time += timedelta(days=1)  # a day given: up to its end
    return JournalQuery(
        sender=_address(sender) if sender else None,
        recipient=_address(recipient) if recipient else None,
        since=_day(since, "--since"),
        until=until_time,
        domain=_domain(domain) if domain else None,
    )


@journal.command("search")
@_query_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def journal_search(
    ctx: click.Context,
    *,
    sender: str | None,
    recipient: str | None,
    since: str | None,
    until: str | None,
    domain: str | None,
    as_json: bool,
) -> None:
    """Find journal records by envelope sender, recipient and time."""
    query = _query(sender, recipient, since, until, domain)

    async def action(store: Store, _blobs: Blobs) -> None:
        for record in await store.search_journal(query):
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "id": record.id,
                            "domain": record.domain,
                            "received": record.received.isoformat(),
                            "direction": "out" if record.is_outgoing else "in",
                            "from": record.sender,
                            "to": list(record.recipients),
                            "size": record.size,
                        }
                    )
                )
            else:
                click.echo(
                    f"{record.id} {record.received:%Y-%m-%d %H:%M:%S} {'out' if record.is_outgoing else 'in '}"
                    f" {record.domain} <{record.sender}> -> {', '.join(record.recipients)} {record.size} octets"
                )

    _run(ctx, action)


@journal.command("export")
@_query_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="mbox file")
@click.pass_context
def journal_export(
    ctx: click.Context,
    *,
    sender: str | None,
    recipient: str | None,
    since: str | None,
    until: str | None,
    domain: str | None,
    out_path: Path,
) -> None:
    """Write the matching records, envelope included, to an mbox file (mboxrd)."""
    query = _query(sender, recipient, since, until, domain)
    config = _config(ctx)
    if out_path.exists():
        _fail(f"{out_path}: exists; choose a new file")

    async def action(store: Store, blobs: Blobs) -> int:
        reader = archiving(config, store, blobs, now=lambda: datetime.now(UTC)).journal
        records = await store.search_journal(query)
        out = await asyncio.to_thread(open, out_path, "xb")
        try:
            count = 0
            for record in records:  # one at a time: a large export never sits in memory whole
                count += await asyncio.to_thread(write_mbox, [await reader.read(record)], out)
        finally:
            out.close()
            reader.close()
        return count

    try:
        count = _run(ctx, action)
    except OSError as exc:
        _fail(f"{out_path}: {exc.strerror or exc}")
    click.echo(f"exported {count} messages to {out_path}")
