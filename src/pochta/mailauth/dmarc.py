"""DMARC (RFC 7489): the policy record, identifier alignment, and what to do with a failing message.

The organizational domain (RFC 7489 §3.2) comes from the Public Suffix List as packaged by
``publicsuffixlist`` (a copy of the list ships inside the package and is refreshed with its releases, so
it works offline; publicsuffix2's bundled list stopped in 2019 and tldextract fetches the list at run time).
"""

from __future__ import annotations

import email.utils
import enum
import functools
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import publicsuffixlist

from pochta.dns import DomainNotFound, Resolver, TemporaryLookupFailure
from pochta.mail.address import AddressError, normalize_domain
from pochta.mail.headers import decode_text, header_values


class DmarcResult(enum.StrEnum):
    """RFC 8601 §2.7 / RFC 7489 §11.2 words for ``dmarc=``."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class Policy(enum.StrEnum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


MAX_FROM_DOMAINS = 4  # From domains checked; a message naming more is judged by the first ones
_WEAKER = {Policy.REJECT: Policy.QUARANTINE, Policy.QUARANTINE: Policy.NONE, Policy.NONE: Policy.NONE}


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A parsed ``v=DMARC1`` record (RFC 7489 §6.3); reporting tags are read past and ignored."""

    policy: Policy
    subdomain_policy: Policy | None = None
    percent: int = 100
    strict_dkim: bool = False  # adkim=s
    strict_spf: bool = False  # aspf=s


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    """An authenticated identifier DMARC may align with: the SPF-checked domain or a DKIM d=."""

    domain: str
    is_pass: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DmarcOutcome:
    result: DmarcResult
    from_domain: str = ""
    policy: Policy = Policy.NONE  # the published policy that applies (p= or sp=)
    disposition: Policy = Policy.NONE  # what to do after pct= sampling: only meaningful on a fail
    reason: str = ""


class _Invalid(Exception):
    pass


_TAG = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")


def parse_record(text: str) -> Record:
    """RFC 7489 §6.4; raises _Invalid for a record that gives no usable policy (§6.6.3 step 6)."""
    parts = text.split(";")
    tags: dict[str, str] = {}
    for part in parts:
        if not part.strip():
            continue
        match = _TAG.fullmatch(part)
        if not match:
            raise _Invalid(f"bad tag {part.strip()!r}")
        tags.setdefault(match.group(1).lower(), match.group(2))
    if not parts[0].strip().startswith("v") or tags.get("v") != "DMARC1":
        raise _Invalid("not a DMARC1 record")  # RFC 7489 §6.4: v= comes first
    policy = _policy(tags.get("p"))
    subdomain = _policy(tags.get("sp")) if "sp" in tags else None
    if policy is None or ("sp" in tags and subdomain is None):
        if "rua" in tags and "mailto:" in tags["rua"].lower():  # §6.6.3: act as if p=none
            return Record(policy=Policy.NONE)
        raise _Invalid("no valid p=")
    try:
        percent = min(max(int(tags.get("pct", "100")), 0), 100)
    except ValueError:
        percent = 100  # an invalid value is ignored (RFC 7489 §6.3 "pct")
    return Record(
        policy=policy,
        subdomain_policy=subdomain,
        percent=percent,
        strict_dkim=tags.get("adkim", "r").lower() == "s",
        strict_spf=tags.get("aspf", "r").lower() == "s",
    )


def _policy(value: str | None) -> Policy | None:
    try:
        return Policy(value.lower()) if value is not None else None
    except ValueError:
        return None


@functools.cache
def _suffixes() -> publicsuffixlist.PublicSuffixList:
    return publicsuffixlist.PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The registered domain: one label more than the public suffix (RFC 7489 §3.2)."""
    domain = domain.rstrip(".").lower()
    return _suffixes().privatesuffix(domain) or domain


def is_aligned(identifier: str, from_domain: str, *, strict: bool) -> bool:
    """RFC 7489 §3.1: the same domain (strict), or the same organizational domain (relaxed)."""
    identifier, from_domain = _ascii(identifier), _ascii(from_domain)
    if strict:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def _ascii(domain: str) -> str:
    """The lower-case A-label form (RFC 6532 lets From carry U-labels; DKIM d= is always ASCII); a name that
    is no domain at all is kept as written, for ``evaluate`` to refuse."""
    try:
        return normalize_domain(domain)
    except AddressError:
        return domain.strip().rstrip(".").lower()


def from_domains(header_block: bytes) -> list[str]:
    """The domains of every address in every From field (RFC 7489 §6.6.1), A-labels, in order."""
    domains: list[str] = []
    for value in header_values(header_block, "From"):
        for _, address in email.utils.getaddresses([decode_text(value)]):
            domain = _ascii(address.rpartition("@")[2])
            if "@" in address and domain and domain not in domains:
                domains.append(domain)
    return domains


async def find_record(resolver: Resolver, domain: str) -> tuple[Record, str] | None:
    """The policy for ``domain``: its own _dmarc record, else its organizational domain's (RFC 7489 §6.6.3).
    Raises TemporaryLookupFailure when DNS cannot say."""
    record = await _record_at(resolver, domain)
    if record is not None:
        return record, domain
    organizational = organizational_domain(domain)
    if organizational != domain:
        record = await _record_at(resolver, organizational)
        if record is not None:
            return record, organizational
    return None


async def _record_at(resolver: Resolver, domain: str) -> Record | None:
    try:
        texts = await resolver.txt(f"_dmarc.{domain}")
    except DomainNotFound:
        return None
    candidates = [text for text in texts if re.match(rb"\s*v\s*=\s*DMARC1\s*(;|$)", text)]
    if len(candidates) != 1:
        return None  # none, or several: policy discovery fails (RFC 7489 §6.6.3 step 4)
    try:
        return parse_record(candidates[0].decode("ascii"))
    except (_Invalid, UnicodeDecodeError):
        return None


async def evaluate(
    resolver: Resolver,
    *,
    from_domain: str,
    spf: Identifier | None,
    dkim: Sequence[Identifier],
    sample: Callable[[], float] = random.random,
) -> DmarcOutcome:
    """DMARC for one From domain: pass when an authenticated identifier aligns (RFC 7489 §4.2)."""
    try:
        from_domain = normalize_domain(from_domain)
    except AddressError:
        return DmarcOutcome(result=DmarcResult.PERMERROR, from_domain=from_domain, reason="From domain is not valid")
    try:
        found = await find_record(resolver, from_domain)
    except TemporaryLookupFailure as exc:
        return DmarcOutcome(result=DmarcResult.TEMPERROR, from_domain=from_domain, reason=f"DNS: {exc}")
    if found is None:
        return DmarcOutcome(result=DmarcResult.NONE, from_domain=from_domain, reason="no policy")
    record, record_domain = found
    policy = record.policy
    if record_domain != from_domain and record.subdomain_policy is not None:
        policy = record.subdomain_policy  # RFC 7489 §6.3 "sp"
    aligned = _aligned(record, from_domain, spf=spf, dkim=dkim)
    if aligned:
        return DmarcOutcome(
            result=DmarcResult.PASS, from_domain=from_domain, policy=policy, disposition=Policy.NONE, reason=aligned
        )
    disposition = policy
    if record.percent < 100 and sample() * 100 >= record.percent:
        disposition = _WEAKER[policy]  # RFC 7489 §6.6.4: not sampled, so the next weaker policy
    return DmarcOutcome(
        result=DmarcResult.FAIL,
        from_domain=from_domain,
        policy=policy,
        disposition=disposition,
        reason="no aligned identifier",
    )


def _aligned(record: Record, from_domain: str, *, spf: Identifier | None, dkim: Iterable[Identifier]) -> str:
    for signature in dkim:
        if signature.is_pass and is_aligned(signature.domain, from_domain, strict=record.strict_dkim):
            return f"dkim {signature.domain}"
    if spf is not None and spf.is_pass and is_aligned(spf.domain, from_domain, strict=record.strict_spf):
        return f"spf {spf.domain}"
    return ""


_ORDER = {
    DmarcResult.FAIL: 4,
    DmarcResult.TEMPERROR: 3,
    DmarcResult.PERMERROR: 2,
    DmarcResult.NONE: 1,
    DmarcResult.PASS: 0,
}
_STRENGTH = {Policy.REJECT: 2, Policy.QUARANTINE: 1, Policy.NONE: 0}


async def check(
    resolver: Resolver,
    *,
    header_block: bytes,
    spf: Identifier | None,
    dkim: Sequence[Identifier],
    sample: Callable[[], float] = random.random,
) -> DmarcOutcome:
    """DMARC for a message: each From domain is checked and the worst outcome counts, so a second From
    address cannot hide a failing one (RFC 7489 §6.6.1)."""
    domains = from_domains(header_block)
    if not domains:
        return DmarcOutcome(result=DmarcResult.PERMERROR, reason="no From domain")
    outcomes = [
        await evaluate(resolver, from_domain=domain, spf=spf, dkim=dkim, sample=sample)
        for domain in domains[:MAX_FROM_DOMAINS]
    ]
    return max(outcomes, key=lambda o: (_ORDER[o.result], _STRENGTH[o.disposition]))
