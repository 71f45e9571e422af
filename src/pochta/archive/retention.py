"""Retention: per domain, account or mailbox, move old messages into Archive (or Archive/<year>) and
expunge Trash and Junk after some days; also purge the undelete bin and the journal past their time and
send quota warnings. One task in ``pochta serve`` runs it every ``[retention] interval``; ``pochta archive
run`` runs it once.

Which rule applies to a mailbox: a policy for the account and that mailbox name, else one for the
account's domain and that name, else the config defaults (INBOX: ``archive_after_days``; the ``\\Trash``
and ``\\Junk`` mailboxes: ``trash_days``, ``junk_days``). A rule of 0 days does nothing, so a policy can
switch a default off. Archiving counts a message's age from its INTERNALDATE (when it arrived);
expunging counts from when it was saved into that mailbox (moved to Trash), as Dovecot's autoexpunge does.

Moves and expunges go through the store's ordinary MOVE and EXPUNGE, in batches of ``[retention] batch``
messages per transaction with a yield between them, so IMAP clients see ordinary EXPUNGE/VANISHED and
EXISTS (IDLE pushes them) and other work goes on between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pochta.archive.journal import Journal
from pochta.archive.quota import QuotaWarnings
from pochta.config import Config, Retention
from pochta.store.api import (
    HIERARCHY_SEPARATOR,
    INBOX,
    Account,
    AlreadyExists,
    Blobs,
    Mailbox,
    RetentionAction,
    RetentionPolicy,
    SpecialUse,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)

ARCHIVE = "Archive"  # the name made when an account has no \Archive mailbox (RFC 6154)
_DRY_RUN_LIMIT = 10**9


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """The retention rule in force for one mailbox of one account, and where it comes from."""

    mailbox: Mailbox
    action: RetentionAction
    days: int
    is_per_year: bool
    source: str  # "config", "domain example.com" or "account a@example.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """Messages a run moved or expunged (or would have, with dry_run)."""

    account: str
    mailbox: str
    action: RetentionAction
    count: int
    target: str | None = None  # the archive mailbox, for ARCHIVE


@dataclass(slots=True, kw_only=True)
class Report:
    steps: list[Step] = field(default_factory=list)
    undelete_purged: int = 0
    journal_expired: int = 0
    quota_warnings: int = 0
    failed: int = 0  # rules that could not be applied this time (logged)


def archive_name(mailboxes: Sequence[Mailbox]) -> str:
    """The account's archive mailbox: the one marked \\Archive, else ``Archive``."""
    for mailbox in mailboxes:
        if mailbox.special_use is SpecialUse.ARCHIVE:
            return mailbox.name
    return ARCHIVE


def _is_inside(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + HIERARCHY_SEPARATOR)


def rules_for(
    account: Account, mailboxes: Sequence[Mailbox], policies: Sequence[RetentionPolicy], defaults: Retention
) -> list[Rule]:
    """The rules in force for each of the account's mailboxes (those with days > 0 only)."""
    domain = account.address.rpartition("@")[2]
    by_account = {p.mailbox: p for p in policies if p.target == account.address}
    by_domain = {p.mailbox: p for p in policies if p.target == domain}
    archive = archive_name(mailboxes)
    rules: list[Rule] = []
    for mailbox in mailboxes:
        policy = by_account.get(mailbox.name) or by_domain.get(mailbox.name)
        if policy is not None:
            source = f"{policy.scope} {policy.target}"
            rule = Rule(
                mailbox=mailbox, action=policy.action, days=policy.days, is_per_year=policy.is_per_year, source=source
            )
        elif mailbox.name == INBOX:
            rule = Rule(
                mailbox=mailbox,
                action=RetentionAction.ARCHIVE,
                days=defaults.archive_after_days,
                is_per_year=defaults.archive_per_year,
                source="config",
            )
        elif mailbox.special_use in (SpecialUse.TRASH, SpecialUse.JUNK):
            days = defaults.trash_days if mailbox.special_use is SpecialUse.TRASH else defaults.junk_days
            rule = Rule(mailbox=mailbox, action=RetentionAction.EXPUNGE, days=days, is_per_year=False, source="config")
        else:
            continue
        if rule.days <= 0:
            continue
        if rule.action is RetentionAction.ARCHIVE and _is_inside(mailbox.name, archive):
            continue  # never archive the archive into itself
        rules.append(rule)
    return rules


def archive_target(archive: str, moment: datetime, *, is_per_year: bool) -> str:
    return f"{archive}{HIERARCHY_SEPARATOR}{moment.year}" if is_per_year else archive


class RetentionTask:
    """Applies the retention rules of every account, purges what expired; `run` repeats it until `stop`."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Retention,
        now: Callable[[], datetime],
        journal: Journal | None = None,
        warnings: QuotaWarnings | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._now = now
        self._journal = journal
        self._warnings = warnings
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()

    async def run_once(self, *, dry_run: bool = False) -> Report:
        async with self._lock:  # one run at a time
            report = Report()
            now = self._now()
            policies = await self._store.retention_policies()
            for account in await self._store.list_accounts():
                if self._stopping.is_set():
                    break
                mailboxes = await self._store.list_mailboxes(account.id)
                for rule in rules_for(account, mailboxes, policies, self._settings):
                    try:
                        report.steps += await self._apply(account, mailboxes, rule, now=now, dry_run=dry_run)
                    except StoreError as exc:  # e.g. the user deleted the mailbox meanwhile: the others go on
                        log.warning("retention skipped user=%s mailbox=%s: %s", account.address, rule.mailbox.name, exc)
                        report.failed += 1
            if not dry_run:
                report.undelete_purged = await self._purge_deleted(now)
            if self._journal is not None:
                report.journal_expired = len(await self._journal.expire(dry_run=dry_run))
            if self._warnings is not None and not dry_run:
                report.quota_warnings = await self._warnings.check()
            return report

    async def _apply(
        self, account: Account, mailboxes: Sequence[Mailbox], rule: Rule, *, now: datetime, dry_run: bool
    ) -> list[Step]:
        before = now - timedelta(days=rule.days)
        is_expunge = rule.action is RetentionAction.EXPUNGE
        archive = archive_name(mailboxes)
        counts: dict[str | None, int] = {}
        batch = _DRY_RUN_LIMIT if dry_run else self._settings.batch
        while not self._stopping.is_set():
            due = await self._store.retention_due(rule.mailbox.id, before=before, by_save_date=is_expunge, limit=batch)
            if not due:
                break
            if is_expunge:
                done = (
                    len(await self._store.expunge(rule.mailbox.id, [m.uid for m in due])) if not dry_run else len(due)
                )
                counts[None] = counts.get(None, 0) + done
            else:
                by_target: dict[str, list[int]] = {}
                for message in due:
                    target = archive_target(archive, message.internal_date, is_per_year=rule.is_per_year)
                    by_target.setdefault(target, []).append(message.uid)
                done = 0
                for target, uids in by_target.items():
                    moved = len(uids)
                    if not dry_run:
                        target_id = await self._archive_mailbox(account, target)
                        moved = len(await self._store.move(rule.mailbox.id, uids, target_id))
                    counts[target] = counts.get(target, 0) + moved
                    done += moved
            if dry_run or done == 0 or len(due) < batch:
                break
            await asyncio.sleep(0)  # let sessions and deliveries run between batches
        steps = [
            Step(account=account.address, mailbox=rule.mailbox.name, action=rule.action, count=count, target=target)
            for target, count in counts.items()
        ]
        for step in steps:
            if not dry_run:
                log.info(
                    "retention %s user=%s mailbox=%s count=%d target=%s rule=%s",
                    step.action.value, step.account, step.mailbox, step.count, step.target or "-", rule.source,
                )  # fmt: skip
        return steps

    async def _archive_mailbox(self, account: Account, name: str) -> int:
        """The archive mailbox (or its year folder), made when missing, with its parent."""
        parts = name.split(HIERARCHY_SEPARATOR)
        mailbox_id = 0
        for depth in range(1, len(parts) + 1):
            partial = HIERARCHY_SEPARATOR.join(parts[:depth])
            found = await self._store.get_mailbox(account.id, partial)
            if found is None:
                use = SpecialUse.ARCHIVE if depth == 1 and partial == ARCHIVE else None
                with contextlib.suppress(AlreadyExists):  # a client made it meanwhile
                    found = await self._store.create_mailbox(account.id, partial, special_use=use)
                if found is None:
                    found = await self._store.get_mailbox(account.id, partial)
                assert found is not None
            mailbox_id = found.id
        return mailbox_id

    async def _purge_deleted(self, now: datetime) -> int:
        before = now - timedelta(days=self._settings.undelete_days)
        purged = 0
        while not self._stopping.is_set():
            count = await self._store.purge_deleted(before=before, limit=self._settings.batch)
            purged += count
            if count < self._settings.batch:
                break
            await asyncio.sleep(0)
        if purged:
            log.info("undelete bin purged count=%d", purged)
        return purged

    async def run(self) -> None:
        """Run now and then every `interval` seconds until `stop`; a failed run is logged and retried."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("retention run failed; next try in %.0f s", self._settings.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.interval)

    def stop(self) -> None:
        self._stopping.set()


@dataclass(frozen=True, slots=True, kw_only=True)
class Archiving:
    """The journal, the quota warnings and the retention task of one node, built from its config."""

    journal: Journal
    warnings: QuotaWarnings
    task: RetentionTask


def archiving(config: Config, store: Store, blobs: Blobs, *, now: Callable[[], datetime]) -> Archiving:
    journal = Journal(store, blobs, config.data_path / "journal", now=now, fsync=config.storage.fsync)
    warnings = QuotaWarnings(
        store, blobs, hostname=config.hostname, percent=config.retention.quota_warning_percent, now=now
    )
    task = RetentionTask(store, settings=config.retention, now=now, journal=journal, warnings=warnings)
    return Archiving(journal=journal, warnings=warnings, task=task)
