"""Sender authentication on the MX: SPF, DKIM, DMARC and ARC, one Authentication-Results field, and the
DMARC policy applied (``reject`` → 550 5.7.1, ``quarantine`` → Junk).

DNS trouble never rejects: a temperror is recorded and the message goes on. A DMARC failure is forgiven
when a sealer the operator trusts vouches for the message with a passing ARC chain (RFC 7489 §7.2, the
"trusted forwarder" and "mailing list" overrides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pochta.dns import DnsError, Resolver
from pochta.filters.pipeline import Action, Inbound, Verdict
from pochta.mailauth import arc as arc_module
from pochta.mailauth import dkim as dkim_module
from pochta.mailauth import dmarc as dmarc_module
from pochta.mailauth import spf as spf_module
from pochta.mailauth.arc import ArcOutcome, ArcResult
from pochta.mailauth.dkim import DkimOutcome, DkimResult
from pochta.mailauth.dmarc import DmarcOutcome, DmarcResult, Identifier, Policy
from pochta.mailauth.results import MethodResult, header_value
from pochta.mailauth.spf import SpfOutcome, SpfResult
from pochta.proto.smtp.replies import Reply

log = logging.getLogger(__name__)

MAX_HEADER_BLOCK = 1 << 20  # octets searched for the end of the header block (the MX's own header limit)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    hostname: str  # our authserv-id (RFC 8601 §2.5)
    dmarc_reject: bool = True  # False: a p=reject failure goes to Junk instead
    trusted_arc_sealers: frozenset[str] = field(default_factory=frozenset)
    time_budget: float = 20.0  # seconds for each method's lookups (RFC 7208 §4.6.4: at least 20 s for SPF)


class AuthCheck:
    name = "auth"

    def __init__(
        self, resolver: Resolver, settings: AuthSettings, *, sample: Callable[[], float] = random.random
    ) -> None:
        self._resolver = resolver
        self._settings = settings
        self._sample = sample

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        resolver = _Answers(self._resolver)  # each name is asked once per message
        content = message.content
        data = content if isinstance(content, bytes) else content[:]  # dkimpy wants bytes
        header_block = _header_block(data)
        budget = self._settings.time_budget  # DNS that never answers costs this, then temperror
        slow = "DNS too slow"
        spf, dkim, arc, _ = await asyncio.gather(
            _within(
                self._spf(resolver, message), SpfOutcome(result=SpfResult.TEMPERROR, domain="", reason=slow), budget
            ),
            _within(
                dkim_module.verify(data, resolver), [DkimOutcome(result=DkimResult.TEMPERROR, reason=slow)], budget
            ),
            _within(arc_module.verify(data, resolver), ArcOutcome(result=ArcResult.TEMPERROR, reason=slow), budget),
            _within(_prefetch_policies(resolver, header_block), None, budget),  # needs no other result
        )
        dmarc = await _within(
            dmarc_module.check(
                resolver,
                header_block=header_block,
                spf=Identifier(domain=spf.domain, is_pass=spf.result is SpfResult.PASS) if spf.domain else None,
                dkim=[Identifier(domain=o.domain, is_pass=o.result is DkimResult.PASS) for o in dkim],
                sample=self._sample,
            ),
            DmarcOutcome(result=DmarcResult.TEMPERROR, reason=slow),
            budget,
        )
        action, reply, note = self._decide(dmarc, arc)
        results = [
            _spf_result(spf, message),
            *(_dkim_result(outcome) for outcome in dkim),
            *([] if dkim else [MethodResult(method="dkim", result="none")]),
            _dmarc_result(dmarc, note),
            _arc_result(arc),
        ]
        return Verdict(
            action=action,
            reply=reply,
            headers=(("Authentication-Results", header_value(self._settings.hostname, results)),),
            facts={
                "spf": spf.result.value,
                "dkim": _summary(dkim).value,
                "dmarc": dmarc.result.value,
                "dmarc.policy": dmarc.policy.value,
                "arc": arc.result.value,
            },
            reason=f"dmarc={dmarc.result} from={dmarc.from_domain} dis={dmarc.disposition}{note and ' ' + note}"
            if action is not Action.ACCEPT
            else "",
        )

    async def _spf(self, resolver: Resolver, message: Inbound) -> SpfOutcome:
        """MAIL FROM's domain; the HELO name when the reverse-path is null (RFC 7208 §2.4)."""
        sender = message.envelope.mail_from
        if sender:
            domain = sender.rpartition("@")[2]
        else:
            domain, sender = message.helo, f"postmaster@{message.helo}"
        return await spf_module.check_host(
            resolver,
            ip=message.remote_ip,
            domain=domain,
            sender=sender,
            helo=message.helo,
            receiver=self._settings.hostname,
        )

    def _decide(self, dmarc: DmarcOutcome, arc: ArcOutcome) -> tuple[Action, Reply | None, str]:
        if dmarc.result is not DmarcResult.FAIL or dmarc.disposition is Policy.NONE:
            return Action.ACCEPT, None, ""
        if arc.result is ArcResult.PASS and arc.sealer in self._settings.trusted_arc_sealers:
            return Action.ACCEPT, None, f"overridden: ARC sealed by trusted {arc.sealer}"  # RFC 7489 §7.2
        if dmarc.disposition is Policy.REJECT and self._settings.dmarc_reject:
            text = f"DMARC policy of {_shown(dmarc.from_domain)} rejects this message: no aligned SPF or DKIM pass"
            return Action.REJECT, Reply(code=550, status="5.7.1", text=text), ""
        return Action.JUNK, None, ""


async def _within(work: Awaitable[_T], late: _T, seconds: float) -> _T:
    """The work's result, or ``late`` when DNS keeps it longer (a temperror, never a refusal)."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        return late


async def _prefetch_policies(resolver: Resolver, header_block: bytes) -> None:
    """Ask for the From domains' DMARC records now; the answers (or failures) wait in the message's cache."""
    for domain in dmarc_module.from_domains(header_block)[: dmarc_module.MAX_FROM_DOMAINS]:
        with contextlib.suppress(DnsError):
            await dmarc_module.find_record(resolver, domain)


def _shown(domain: str) -> str:
    """A domain for a reply line: its ASCII form (an international name as its A-label)."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain.encode("ascii", "replace").decode("ascii")


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n", 0, MAX_HEADER_BLOCK)
    return data[: end + 2] if end >= 0 else data[:MAX_HEADER_BLOCK]


def _summary(outcomes: list[DkimOutcome]) -> DkimResult:
    """One word for the facts: a pass if any signature passed, else the most telling failure."""
    results = {outcome.result for outcome in outcomes}
    for result in (DkimResult.PASS, DkimResult.TEMPERROR, DkimResult.FAIL, DkimResult.PERMERROR):
        if result in results:
            return result
    return DkimResult.NONE


def _spf_result(spf: SpfOutcome, message: Inbound) -> MethodResult:
    identity = (
        ("smtp.mailfrom", message.envelope.mail_from) if message.envelope.mail_from else ("smtp.helo", message.helo)
    )
    comment = f"{message.remote_ip}: {spf.reason}" if spf.reason else message.remote_ip
    return MethodResult(method="spf", result=spf.result.value, comment=comment[:200], properties=(identity,))


def _dkim_result(outcome: DkimOutcome) -> MethodResult:
    return MethodResult(
        method="dkim",
        result=outcome.result.value,
        comment=outcome.reason[:200],
        properties=(
            ("header.d", outcome.domain),
            ("header.s", outcome.selector),
            ("header.a", outcome.algorithm),
            ("header.b", outcome.signature[:8]),  # RFC 6008 §4
        ),
    )


def _dmarc_result(dmarc: DmarcOutcome, note: str) -> MethodResult:
    comment = ""
    if dmarc.result in (DmarcResult.PASS, DmarcResult.FAIL):
        comment = f"p={dmarc.policy} dis={dmarc.disposition}"
    elif dmarc.reason:
        comment = dmarc.reason
    if note:
        comment = f"{comment}; {note}" if comment else note
    return MethodResult(
        method="dmarc",
        result=dmarc.result.value,
        comment=comment[:200],
        properties=(("header.from", dmarc.from_domain),),
    )


def _arc_result(arc: ArcOutcome) -> MethodResult:
    comment = f"i={arc.instance} sealer={arc.sealer}" if arc.result is ArcResult.PASS else arc.reason
    return MethodResult(method="arc", result=arc.result.value, comment=comment[:200])


def _retrieve(future: asyncio.Future[object]) -> None:
    """Mark a lookup's failure as seen even when the method that wanted it has given up."""
    if not future.cancelled():
        future.exception()


class _Answers:
    """A resolver that asks each question once for the message being checked (SPF, DKIM, DMARC and ARC
    often ask the same names) and remembers failures as well as answers."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._answers: dict[tuple[str, str], asyncio.Future[object]] = {}

    async def _ask(self, kind: str, name: str, query: Callable[[str], Awaitable[_T]]) -> _T:
        key = (kind, name.lower())
        future = self._answers.get(key)
        if future is None:
            future = self._answers[key] = asyncio.ensure_future(query(name))
            future.add_done_callback(_retrieve)
        # shielded: a method that runs out of time must not cancel a lookup another method waits for
        return await asyncio.shield(future)  # type: ignore[arg-type]

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        return await self._ask("mx", domain, self._resolver.mx)

    async def a(self, host: str) -> list[str]:
        return await self._ask("a", host, self._resolver.a)

    async def aaaa(self, host: str) -> list[str]:
        return await self._ask("aaaa", host, self._resolver.aaaa)

    async def ptr(self, ip: str) -> list[str]:
        return await self._ask("ptr", ip, self._resolver.ptr)

    async def txt(self, name: str) -> list[bytes]:
        return await self._ask("txt", name, self._resolver.txt)
