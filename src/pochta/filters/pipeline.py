"""The inbound checks, in order, each returning a verdict; the first reject or tempfail ends the run.

A check sees the whole message and what earlier checks found (`facts`: SPF/DKIM/DMARC results for the
spam rules, the spam score and virus result for Sieve's spamtest/virustest). Headers the checks add are
prepended to the stored message after the trace headers, in check order. A check that raises is our
mistake: the peer gets 451 and keeps the message, so nothing is lost.
"""

from __future__ import annotations

import enum
import logging
import mmap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pochta.mail.envelope import Envelope
from pochta.proto.smtp.replies import Reply

log = logging.getLogger(__name__)

CHECK_FAILED = Reply(code=451, status="4.3.0", text="message could not be checked, try again later")


class Action(enum.StrEnum):
    ACCEPT = "accept"
    JUNK = "junk"  # deliver, but into each recipient's Junk mailbox
    REJECT = "reject"  # 5xx: the sender keeps the message and is told why
    TEMPFAIL = "tempfail"  # 4xx: the sender retries later


FINAL = frozenset({Action.REJECT, Action.TEMPFAIL})


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    action: Action = Action.ACCEPT
    headers: tuple[tuple[str, str], ...] = ()  # (name, unfolded value), prepended in this order
    reply: Reply | None = None  # the SMTP answer for REJECT and TEMPFAIL
    facts: Mapping[str, str] = field(default_factory=dict)  # for later checks and Sieve, e.g. "dmarc": "pass"
    junk_accounts: frozenset[int] = frozenset()  # per-user verdicts: these accounts' copies go to Junk
    reason: str = ""  # for the log


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """One received message as the checks see it."""

    id: str
    content: bytes | mmap.mmap  # the whole message, trace headers included; mapped when large
    envelope: Envelope
    remote_ip: str
    helo: str
    is_tls: bool
    authenticated: str | None = None  # the submitting user on 587/465; None on the MX
    account_ids: tuple[int, ...] = ()  # local recipients' accounts (per-user models and lists)


class Check(Protocol):
    name: str

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    action: Action
    reply: Reply | None
    headers: tuple[tuple[str, str], ...]
    facts: Mapping[str, str]
    junk_accounts: frozenset[int]

    def header_block(self) -> bytes:
        """The added headers as they are written into the message (UTF-8; values already RFC 5322-safe)."""
        return b"".join(f"{name}: {value}\r\n".encode() for name, value in self.headers)


ACCEPTED = Outcome(action=Action.ACCEPT, reply=None, headers=(), facts={}, junk_accounts=frozenset())


class Pipeline:
    def __init__(self, checks: Sequence[Check] = ()) -> None:
        self.checks = tuple(checks)

    def __bool__(self) -> bool:
        return bool(self.checks)

    async def run(self, message: Inbound) -> Outcome:
        action = Action.ACCEPT
        headers: list[tuple[str, str]] = []
        facts: dict[str, str] = {}
        junk: set[int] = set()
        for check in self.checks:
            started = time.perf_counter()
            try:
                verdict = await check.check(message, facts)
            except Exception:
                log.exception("check failed id=%s check=%s", message.id, check.name)
                verdict = Verdict(action=Action.TEMPFAIL, reply=CHECK_FAILED, reason="check failed")
            log.info(
                "check id=%s check=%s action=%s ms=%.2f%s",
                message.id,
                check.name,
                verdict.action,
                (time.perf_counter() - started) * 1000,
                f" reason={verdict.reason!r}" if verdict.reason else "",
            )
            headers.extend(verdict.headers)
            facts.update(verdict.facts)
            junk |= verdict.junk_accounts
            if verdict.action in FINAL:
                reply = verdict.reply or (CHECK_FAILED if verdict.action is Action.TEMPFAIL else _REJECTED)
                return Outcome(
                    action=verdict.action, reply=reply, headers=tuple(headers), facts=facts, junk_accounts=frozenset()
                )
            if verdict.action is Action.JUNK:
                action = Action.JUNK
        return Outcome(action=action, reply=None, headers=tuple(headers), facts=facts, junk_accounts=frozenset(junk))


_REJECTED = Reply(code=550, status="5.7.1", text="message refused")
