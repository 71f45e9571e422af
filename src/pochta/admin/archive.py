"""`pochta import`, `export`, `import-imap`, `backup`, `restore-backup` and `verify` (docs/archive.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pochta import config as config_module
from pochta.archive.backup import (
    BackupError,
    CopyReport,
    check_empty,
    copy_store,
    read_marker,
    verify,
    write_marker,
)
from pochta.archive.exporter import Exporter
from pochta.archive.imapimport import ImapImport, Remote
from pochta.archive.importer import Importer, Report
from pochta.mail.address import AddressError, parse_address
from pochta.store.api import Account, Blobs, Store, StoreError

T = TypeVar("T")
_err = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    click.echo(f"pochta: {message}", err=True)
    sys.exit(1)


def _config(ctx: click.Context) -> config_module.Config:
    cfg = ctx.obj
    assert isinstance(cfg, config_module.Config)
    return cfg


class _Bar:
    """The Progress protocol of archive/ over a rich progress bar on stderr (quiet when not a terminal)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self.messages = 0

    def add_total(self, octets: int) -> None:
        total = self._progress.tasks[0].total or 0
        self._progress.update(self._task, total=total + octets)

    def advance(self, *, messages: int, octets: int) -> None:
        self.messages += messages
        self._progress.update(self._task, advance=octets, messages=self.messages)


@contextmanager
def _bar(what: str) -> Iterator[_Bar]:
    progress = Progress(
        TextColumn(f"{what} [bold]{{task.fields[messages]}}[/] messages"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        disable=not _err.is_terminal,
        transient=False,
    )
    with progress:
        task = progress.add_task(what, total=0, messages=0)
        yield _Bar(progress, task)


def _run(ctx: click.Context, action: Callable[[Store, Blobs], Awaitable[T]], *, data_dir: Path | None = None) -> T:
    from pochta.app import open_blobs, open_store

    config = _config(ctx)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))

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
    except KeyboardInterrupt:
        click.echo("pochta: interrupted; what was committed stays, and the same command continues from there", err=True)
        sys.exit(130)


async def _account(store: Store, address: str) -> Account:
    try:
        normalized = str(parse_address(address))
    except AddressError as exc:
        raise StoreError(f"{address!r}: {exc}") from exc
    account = await store.get_account(normalized)
    if account is None:
        raise StoreError(f"no account {normalized}")
    return account


def _human(octets: int) -> str:
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _print_import(report: Report, address: str) -> None:
    line = f"imported {report.messages} messages ({_human(report.octets)}) into {address}"
    if report.created:
        line += f"; created {', '.join(report.created)}"
    if report.already:
        line += f"; {report.already} imported by an earlier run were not imported again"
    click.echo(line)
    for item in report.skipped:
        click.echo(f"skipped {item.source} {item.where}: {item.reason}", err=True)
    if report.skipped:
        click.echo(f"{len(report.skipped)} skipped (listed above)", err=True)


def register(cli: click.Group) -> None:
    for command in (import_command, export_command, import_imap_command, backup_command, restore_command):
        cli.add_command(command)
    cli.add_command(verify_command)


@click.command("import")
@click.argument("address")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--mailbox", default=None, help="target mailbox for an mbox file (default INBOX), or parent for a tree")
@click.option("--restart", is_flag=True, help="forget an earlier run's progress and import everything again")
@click.pass_context
def import_command(ctx: click.Context, address: str, path: Path, mailbox: str | None, restart: bool) -> None:
    """Import an mbox file, a directory of mbox files or a Maildir(++) into ADDRESS.

    Flags and internal dates are kept, folders created. An interrupted import, run again, goes on
    where it stopped without duplicates."""

    async def action(store: Store, blobs: Blobs) -> Report:
        account = await _account(store, address)
        if restart:
            await store.forget_import(account.id)
        with _bar("importing") as bar:
            importer = Importer(store, blobs, account, progress=bar)
            return await importer.import_path(path, mailbox=mailbox)

    report = _run(ctx, action)
    _print_import(report, address)


@click.command("export")
@click.argument("address")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["mbox", "maildir"]), required=True)
@click.option("--mailbox", default=None, help="only this mailbox (PATH is then one mbox file or one Maildir)")
@click.pass_context
def export_command(ctx: click.Context, address: str, path: Path, format_: str, mailbox: str | None) -> None:
    """Export ADDRESS's mailboxes to PATH: a directory of mbox files or a Maildir++ tree.

    An interrupted export, run again with the same arguments, goes on where it stopped."""
    config = _config(ctx)

    async def action(store: Store, blobs: Blobs) -> tuple[int, int, int, list[str], list[str]]:
        account = await _account(store, address)
        with _bar("exporting") as bar:
            exporter = Exporter(
                store, blobs, account, hostname=config.hostname, progress=bar, fsync=config.storage.fsync
            )
            report = await exporter.export(path, format=format_, mailbox=mailbox)
        return report.messages, report.octets, report.already, report.mailboxes, report.warnings

    messages, octets, already, mailboxes, warnings = _run(ctx, action)
    line = f"exported {messages} messages ({_human(octets)}) from {len(mailboxes)} mailboxes to {path}"
    if already:
        line += f"; {already} written by an earlier run were kept"
    click.echo(line)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("import-imap")
@click.argument("address")
@click.option("--host", required=True, help="the other IMAP server")
@click.option("--user", "user", required=True, help="login name there")
@click.option("--port", type=int, default=None, help="default 993 with --security tls, else 143")
@click.option("--security", type=click.Choice(["tls", "starttls", "none"]), default="tls", show_default=True)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None, help="CA certificates to trust")
@click.option("--insecure", is_flag=True, help="do not verify the server's certificate")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.option("--restart", is_flag=True, help="forget an earlier run's progress and fetch everything again")
@click.pass_context
def import_imap_command(
    ctx: click.Context,
    address: str,
    *,
    host: str,
    user: str,
    port: int | None,
    security: str,
    ca_file: str | None,
    insecure: bool,
    password_stdin: bool,
    restart: bool,
) -> None:
    """Copy every folder of an account on another IMAP server into ADDRESS (flags, dates, folders).

    Run it again to fetch only what arrived since (and to go on after an interruption)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("POCHTA_IMAP_PASSWORD"):
        password = os.environ["POCHTA_IMAP_PASSWORD"]
    elif sys.stdin.isatty():
        password = click.prompt(f"Password of {user} at {host}", hide_input=True)
    else:
        _fail("no terminal to ask for the password; use --password-stdin or POCHTA_IMAP_PASSWORD")
    remote = Remote(
        host=host,
        port=port or (993 if security == "tls" else 143),
        user=user,
        password=password,
        security=security,
        ca_file=ca_file,
        verify=not insecure,
    )

    async def action(store: Store, blobs: Blobs) -> Report:
        account = await _account(store, address)
        if restart:
            await store.forget_import(account.id)
        with _bar("fetching") as bar:
            importer = Importer(store, blobs, account, progress=bar)
            await ImapImport(importer, blobs, remote, progress=bar).run()
            return importer.report

    report = _run(ctx, action)
    _print_import(report, address)


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def backup_command(ctx: click.Context, directory: Path) -> None:
    """Copy the store into DIRECTORY (new or empty) while the server runs.

    The copy is one consistent snapshot of the database plus every blob it refers to, each re-hashed;
    restore it with `pochta restore-backup DIRECTORY`."""
    from pochta.app import open_blobs

    config = _config(ctx)
    try:
        check_empty(directory)
    except BackupError as exc:
        _fail(str(exc))
    started = datetime.now(UTC)

    async def action(store: Store, blobs: Blobs) -> CopyReport:
        target_blobs = open_blobs(dataclasses.replace(config, data_dir=str(directory)))
        try:
            with _bar("copying blobs") as bar:
                report = await copy_store(
                    store,
                    blobs,
                    target_dir=directory,
                    target_blobs=target_blobs,
                    source_dir=config.data_path,
                    progress=bar,
                )
        finally:
            target_blobs.close()
        await asyncio.to_thread(write_marker, directory, report, now=started)
        return report

    report = _run(ctx, action)
    click.echo(
        f"backup of {report.rows} messages and queue entries ({report.blobs} blobs, {_human(report.octets)})"
        f" written to {directory}"
    )
    _report_problems(report.problems)


@click.command("restore-backup")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def restore_command(ctx: click.Context, directory: Path) -> None:
    """Restore a backup into the configured data directory, which must hold no store yet (stop the
    server first; move the old data directory aside)."""
    from pochta.app import has_store, open_blobs

    config = _config(ctx)
    try:
        read_marker(directory)
    except BackupError as exc:
        _fail(str(exc))
    if has_store(config):
        _fail(f"{config.data_path} already holds a store; restore into a new data_dir or move it aside")
    target = config.data_path

    async def action(store: Store, blobs: Blobs) -> CopyReport:
        target.mkdir(parents=True, exist_ok=True)
        target_blobs = open_blobs(config)
        try:
            with _bar("restoring blobs") as bar:
                return await copy_store(
                    store, blobs, target_dir=target, target_blobs=target_blobs, source_dir=directory, progress=bar
                )
        finally:
            target_blobs.close()

    report = _run(ctx, action, data_dir=directory)
    click.echo(f"restored {report.rows} messages and queue entries ({report.blobs} blobs) into {target}")
    _report_problems(report.problems)


@click.command("verify")
@click.pass_context
def verify_command(ctx: click.Context) -> None:
    """Check every blob against its hash and every message row against its blob; exit 1 on any problem."""

    async def action(store: Store, blobs: Blobs) -> tuple[int, int, int, int, list[str]]:
        with _bar("hashing blobs") as bar:
            report = await verify(store, blobs, progress=bar)
        return report.rows, report.blobs, report.octets, report.unreferenced, report.problems

    rows, blob_count, octets, unreferenced, problems = _run(ctx, action)
    click.echo(f"checked {rows} rows and {blob_count} blobs ({_human(octets)}); {unreferenced} blobs no row refers to")
    _report_problems(problems)
    if not problems:
        click.echo("no problems found")


def _report_problems(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        click.echo(f"pochta: {len(problems)} problems found", err=True)
        sys.exit(1)
