"""The spam check of the inbound pipeline: classifier (global + each recipient's model) plus rules.

Each local recipient gets their own score (their model and their allow/block list); a recipient whose
score reaches the junk threshold gets their copy in Junk, and the message is refused (550 5.7.1) only
when every recipient's score reaches the reject threshold. The headers and the facts for Sieve carry
the score of the only recipient, or the global score when there are several.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pochta.filters.pipeline import Action, Inbound, Verdict
from pochta.proto.smtp.replies import Reply
from pochta.store.api import GLOBAL_MODEL, SpamListEntry, SpamStore

from . import rules
from .dnsbl import Blocklists
from .models import Models, Result
from .rules import Hit
from .tokens import Features, features

log = logging.getLogger(__name__)

REJECTED = Reply(code=550, status="5.7.1", text="message refused as spam")
_INLINE = 32 * 1024  # messages up to this size are tokenised on the event loop (about a millisecond)
_ADDRESS = re.compile(r"[^\s<>\"(),;:@]+@[^\s<>\"(),;:@]+")
LIST_POINTS = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    score: float
    hits: tuple[Hit, ...]
    bayes: Result


def assess(bayes: Result, hits: Iterable[Hit]) -> Assessment:
    """The score of a message: the classifier's points plus every rule's."""
    all_hits = [hit for hit in (rules.bayes_hit(bayes.logit, is_trained=bayes.is_trained),) if hit]
    all_hits += hits
    return Assessment(score=round(sum(hit.points for hit in all_hits), 2), hits=tuple(all_hits), bayes=bayes)


def senders(message_features: Features, mail_from: str) -> set[str]:
    """The addresses a message claims to come from: the envelope sender and the From field, lowercase."""
    found = {address.lower() for address in _ADDRESS.findall(message_features.headers.get("from", ""))}
    if mail_from:
        found.add(mail_from.lower())
    return found


def list_hit(entries: Iterable[SpamListEntry], addresses: set[str]) -> Hit | None:
    """The allow or block list entry matching a sender; the user's own entries win over global ones,
    an allow over a block."""
    matched = [entry for entry in entries if any(_matches(entry.pattern, address) for address in addresses)]
    if not matched:
        return None
    matched.sort(key=lambda entry: (entry.account_id == GLOBAL_MODEL, entry.is_block))
    best = matched[0]
    scope = "GLOBAL" if best.account_id == GLOBAL_MODEL else "USER"
    if best.is_block:
        return Hit(name=f"{scope}_BLOCKLIST", points=LIST_POINTS, detail=best.pattern)
    return Hit(name=f"{scope}_ALLOWLIST", points=-LIST_POINTS, detail=best.pattern)


def _matches(pattern: str, address: str) -> bool:
    if pattern.startswith("@"):
        domain = address.rpartition("@")[2]
        return domain == pattern[1:] or domain.endswith("." + pattern[1:])
    return address == pattern


def status_header(assessment: Assessment, *, junk_threshold: float) -> str:
    verdict = "Yes" if assessment.score >= junk_threshold else "No"
    tests = ",".join(sorted(hit.name for hit in assessment.hits)) or "none"
    return f"{verdict}, score={assessment.score:.1f} required={junk_threshold:.1f} tests={tests}"


class SpamCheck:
    name = "spam"

    def __init__(
        self,
        *,
        models: Models,
        store: SpamStore,
        blocklists: Blocklists | None = None,
        junk_threshold: float = 5.0,
        reject_threshold: float = 15.0,
    ) -> None:
        self._models = models
        self._store = store
        self._blocklists = blocklists
        self.junk_threshold = junk_threshold
        self.reject_threshold = reject_threshold

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        content = message.content
        if len(content) <= _INLINE:
            found = features(bytes(content))
        else:
            found = await asyncio.to_thread(features, content)
        hits = rules.message_hits(found, facts)
        if self._blocklists:
            dnsbl, uribl = await self._blocklists.lookup(message.remote_ip, found.hosts)
            hits += rules.list_hits(dnsbl, uribl)
        accounts: Sequence[int | None] = message.account_ids or (None,)
        entries = await self._store.spam_list([GLOBAL_MODEL, *message.account_ids])
        addresses = senders(found, message.envelope.mail_from)
        judged = await self._models.classify_each(found, [*accounts, None] if len(accounts) > 1 else accounts)
        scores: dict[int | None, Assessment] = {}
        for account in accounts:
            own = [e for e in entries if e.account_id in (GLOBAL_MODEL, account)]
            listed = list_hit(own, addresses)
            scores[account] = assess(judged[account], [*hits, listed] if listed else hits)
        if len(scores) == 1:
            shown = next(iter(scores.values()))
        else:
            global_listed = list_hit([e for e in entries if e.account_id == GLOBAL_MODEL], addresses)
            shown = assess(judged[None], [*hits, global_listed] if global_listed else hits)
        spamtest = rules.spamtest(
            shown.score, junk_threshold=self.junk_threshold, reject_threshold=self.reject_threshold
        )
        headers = (
            ("X-Spam-Status", status_header(shown, junk_threshold=self.junk_threshold)),
            ("X-Spam-Score", f"{shown.score:.1f}"),
        )
        verdict_facts = {"spam.score": f"{shown.score:.2f}", "spamtest": str(spamtest)}
        reason = f"score={shown.score:.1f}"
        if all(a.score >= self.reject_threshold for a in scores.values()):
            return Verdict(action=Action.REJECT, reply=REJECTED, headers=headers, facts=verdict_facts, reason=reason)
        junk = frozenset(a for a, s in scores.items() if a is not None and s.score >= self.junk_threshold)
        if not message.account_ids and shown.score >= self.junk_threshold:
            return Verdict(action=Action.JUNK, headers=headers, facts=verdict_facts, reason=reason)
        return Verdict(headers=headers, facts=verdict_facts, junk_accounts=junk, reason=reason)
