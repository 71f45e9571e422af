"""SPF: RFC 7208's check_host() over our asynchronous Resolver.

Written here rather than taken from pyspf: pyspf is synchronous and does its own DNS (pydns or dnspython's
blocking resolver), so it could neither share the MX's event loop nor our Resolver (tests, per-message cache,
the NXDOMAIN/temporary split). The whole algorithm is small: parse the record, then walk its terms.

Limits (RFC 7208 §4.6.4): 10 terms that cause DNS lookups, 2 void lookups, 10 MX names per ``mx``, the first
10 PTR names for ``ptr``. Past them the result is permerror; a DNS failure is temperror.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pochta.dns import DomainNotFound, Resolver, TemporaryLookupFailure

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect together
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4: lookups answered NXDOMAIN or with no records
MAX_MX_NAMES = 10  # RFC 7208 §4.6.4: more MX names than this is a permerror
MAX_PTR_NAMES = 10  # RFC 7208 §4.6.4: PTR names past the first 10 are ignored
MAX_DOMAIN = 253  # RFC 7208 §7.3: expanded names are cut from the left to this length

_T = TypeVar("_T")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SpfResult(enum.StrEnum):
    """RFC 7208 §2.6; also the words of the ``spf=`` result in Authentication-Results (RFC 8601 §2.7.2)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


_QUALIFIERS = {"+": SpfResult.PASS, "-": SpfResult.FAIL, "~": SpfResult.SOFTFAIL, "?": SpfResult.NEUTRAL}


@dataclass(frozen=True, slots=True, kw_only=True)
class SpfOutcome:
    result: SpfResult
    domain: str  # the domain whose policy was asked (MAIL FROM's or HELO's)
    reason: str = ""  # the matching term, or what went wrong
    explanation: str = ""  # the domain's ``exp=`` text on a fail (RFC 7208 §6.2)


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass(slots=True)
class _Term:
    qualifier: SpfResult
    name: str  # mechanism name, lower case
    spec: str | None = None  # domain-spec, unexpanded
    cidr4: int = 32
    cidr6: int = 128
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    text: str = ""  # as written in the record

    def __str__(self) -> str:
        return self.text or self.name


@dataclass(slots=True)
class _Record:
    terms: list[_Term] = field(default_factory=list)
    redirect: str | None = None
    exp: str | None = None


@dataclass(slots=True)
class _Evaluation:
    result: SpfResult
    reason: str
    exp: str | None = None  # the exp= of the record that gave the result
    domain: str = ""


# --- parsing -----------------------------------------------------------------------------------------

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9\-_.]*)=(.*)", re.DOTALL)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9\-_.]*)(.*)", re.DOTALL)
_DUAL_CIDR = re.compile(r"(.*?)(?:/(0|[1-9][0-9]{0,2}))?(?://(0|[1-9][0-9]{0,2}))?")
_MACRO = re.compile(r"%(?:\{([A-Za-z])([0-9]*)(r?)([.\-+,/_=]*)\}|(.)|$)", re.IGNORECASE)
_TOPLABEL = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]+|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]", re.ASCII)
_DOMAIN_LETTERS = frozenset("slodiphv")
_EXP_LETTERS = _DOMAIN_LETTERS | frozenset("crt")


def parse_record(text: str) -> _Record:
    """A ``v=spf1`` record's terms; a syntax error anywhere is a permerror (RFC 7208 §4.6)."""
    record = _Record()
    for word in text.split(" ")[1:]:
        if not word:
            continue
        if not word.isascii() or not word.isprintable():
            raise _PermError(f"bad character in {word!r}")
        modifier = _MODIFIER.fullmatch(word)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if getattr(record, name) is not None:
                    raise _PermError(f"{name}= given twice")  # RFC 7208 §6
                _check_domain_spec(value)
                setattr(record, name, value)
            else:
                _check_macros(value, letters=_EXP_LETTERS)  # unknown modifiers are ignored (RFC 7208 §6)
            continue
        record.terms.append(_parse_mechanism(word))
    return record


def _parse_mechanism(word: str) -> _Term:
    match = _MECHANISM.fullmatch(word)
    if not match:
        raise _PermError(f"unknown term {word!r}")
    qualifier = _QUALIFIERS[match.group(1) or "+"]
    rest = match.group(3)
    # The name runs to ":" or "/"; "ip4:" etc. keep their colon.
    name = match.group(2).lower()
    term = _Term(qualifier=qualifier, name=name, text=word)
    if name == "all":
        if rest:
            raise _PermError(f"bad term {word!r}")
    elif name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            raise _PermError(f"{name} needs a domain")
        term.spec = rest[1:]
        _check_domain_spec(term.spec)
    elif name in ("a", "mx"):
        cidr = _DUAL_CIDR.fullmatch(rest)
        assert cidr is not None  # the pattern matches any text
        spec = cidr.group(1)
        if spec:
            if not spec.startswith(":") or len(spec) == 1:
                raise _PermError(f"bad term {word!r}")
            term.spec = spec[1:]
            _check_domain_spec(term.spec)
        term.cidr4 = int(cidr.group(2)) if cidr.group(2) else 32
        term.cidr6 = int(cidr.group(3)) if cidr.group(3) else 128
        if term.cidr4 > 32 or term.cidr6 > 128:
            raise _PermError(f"bad prefix length in {word!r}")
    elif name == "ptr":
        if rest:
            if not rest.startswith(":") or len(rest) == 1:
                raise _PermError(f"bad term {word!r}")
            term.spec = rest[1:]
            _check_domain_spec(term.spec)
    elif name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise _PermError(f"{name} needs an address")
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError as exc:
            raise _PermError(f"bad network in {word!r}") from exc
        address = rest[1:].partition("/")[0]
        if (name == "ip4") != (network.version == 4) or (name == "ip4" and address.count(".") != 3):
            raise _PermError(f"bad network in {word!r}")
        term.network = network
    else:
        raise _PermError(f"unknown mechanism {word!r}")  # RFC 7208 §5
    return term


def _check_macros(text: str, *, letters: frozenset[str]) -> None:
    position = 0
    while True:
        index = text.find("%", position)
        if index < 0:
            return
        match = _MACRO.match(text, index)
        assert match is not None
        single = match.group(5)
        if match.group(1) is None and single not in ("%", "_", "-"):
            raise _PermError(f"bad macro in {text!r}")  # RFC 7208 §7.1
        if match.group(1) is not None:
            if match.group(1).lower() not in letters:
                raise _PermError(f"bad macro letter in {text!r}")
            if match.group(2) and int(match.group(2)) == 0:
                raise _PermError(f"zero macro length in {text!r}")  # RFC 7208 §7.3
        position = match.end()


def _check_domain_spec(spec: str) -> None:
    """domain-spec = macro-string domain-end (RFC 7208 §7.1)."""
    _check_macros(spec, letters=_DOMAIN_LETTERS)
    if re.search(r"(%\{[^}]*\}|%%|%_|%-)$", spec):
        return
    labels = spec.rstrip(".").split(".") if spec.endswith(".") else spec.split(".")
    if len(labels) < 2 or not _TOPLABEL.fullmatch(labels[-1]):
        raise _PermError(f"{spec!r} does not end in a top-level domain")


# --- evaluation --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    resolver: Resolver
    ip: IpAddress
    sender: str  # local@domain, "postmaster@helo" when MAIL FROM is null
    helo: str
    receiver: str
    now: Callable[[], float]
    lookups: int = 0
    voids: int = 0
    validated_name: str | None = None  # the %{p} macro, looked up once

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError("too many DNS lookups")

    def void(self) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise _PermError("too many void DNS lookups")


async def check_host(
    resolver: Resolver,
    *,
    ip: str,
    domain: str,
    sender: str,
    helo: str = "",
    receiver: str = "unknown",
    now: Callable[[], float] = time.time,
) -> SpfOutcome:
    """Whether ``ip`` may send mail for ``domain`` (RFC 7208 §4). ``sender`` is the MAIL FROM address, or
    ``postmaster@<helo>`` when checking the HELO identity; ``receiver`` names us in explanations."""
    domain = domain.rstrip(".").lower()
    if not _is_fqdn(domain):
        return SpfOutcome(result=SpfResult.NONE, domain=domain, reason="not a domain name")  # RFC 7208 §4.3
    local, _, sender_domain = sender.rpartition("@")
    sender = f"{local or 'postmaster'}@{sender_domain or domain}"  # RFC 7208 §4.3
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return SpfOutcome(result=SpfResult.PERMERROR, domain=domain, reason=f"bad client address {ip!r}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    context = _Context(resolver=resolver, ip=address, sender=sender, helo=helo, receiver=receiver, now=now)
    try:
        evaluation = await _evaluate(context, domain, top=True)
    except _PermError as exc:
        return SpfOutcome(result=SpfResult.PERMERROR, domain=domain, reason=str(exc))
    except _TempError as exc:
        return SpfOutcome(result=SpfResult.TEMPERROR, domain=domain, reason=str(exc))
    explanation = ""
    if evaluation.result is SpfResult.FAIL and evaluation.exp is not None:
        explanation = await _explanation(context, evaluation.exp, evaluation.domain)
    return SpfOutcome(result=evaluation.result, domain=domain, reason=evaluation.reason, explanation=explanation)


def _is_fqdn(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > MAX_DOMAIN or any(not 0 < len(label) < 64 for label in labels):
        return False
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return True
    return False


async def _record(context: _Context, domain: str) -> _Record | None:
    """The domain's one SPF record, None when it has none (RFC 7208 §4.4, §4.5)."""
    try:
        texts = await context.resolver.txt(domain)
    except DomainNotFound:
        return None
    except TemporaryLookupFailure as exc:
        raise _TempError(f"DNS: {exc}") from exc
    found = [text for text in texts if text.lower() == b"v=spf1" or text[:7].lower() == b"v=spf1 "]
    if not found:
        return None
    if len(found) > 1:
        raise _PermError(f"{domain} has {len(found)} SPF records")
    try:
        return parse_record(found[0].decode("ascii"))
    except UnicodeDecodeError as exc:
        raise _PermError(f"{domain}: SPF record is not ASCII") from exc


async def _evaluate(context: _Context, domain: str, *, top: bool) -> _Evaluation:
    record = await _record(context, domain)
    if record is None:
        return _Evaluation(result=SpfResult.NONE, reason=f"no SPF record at {domain}", domain=domain)
    for term in record.terms:
        if await _matches(context, term, domain):
            return _Evaluation(result=term.qualifier, reason=str(term), exp=record.exp, domain=domain)
    if record.redirect is not None:  # RFC 7208 §6.1: only when no mechanism matched
        context.count()
        target = await _expand_domain(context, record.redirect, domain)
        evaluation = await _evaluate(context, target, top=top)
        if evaluation.result is SpfResult.NONE:
            raise _PermError(f"redirect to {target}, which has no SPF record")
        return evaluation
    return _Evaluation(result=SpfResult.NEUTRAL, reason="no term matched", domain=domain)  # RFC 7208 §4.7


async def _matches(context: _Context, term: _Term, domain: str) -> bool:
    ip = context.ip
    match term.name:
        case "all":
            return True
        case "ip4" | "ip6":
            assert term.network is not None
            return ip.version == term.network.version and ip in term.network
        case "include":  # RFC 7208 §5.2
            context.count()
            assert term.spec is not None
            target = await _expand_domain(context, term.spec, domain)
            result = (await _evaluate(context, target, top=False)).result
            if result is SpfResult.TEMPERROR:
                raise _TempError(f"include:{target}")
            if result in (SpfResult.NONE, SpfResult.PERMERROR):
                raise _PermError(f"include:{target} has no usable SPF record")
            return result is SpfResult.PASS
        case "a":  # RFC 7208 §5.3
            context.count()
            target = await _expand_domain(context, term.spec, domain) if term.spec else domain
            return _in_any(ip, await _addresses(context, target, counts_void=True), term)
        case "mx":  # RFC 7208 §5.4
            context.count()
            target = await _expand_domain(context, term.spec, domain) if term.spec else domain
            exchanges = [host for _, host in await _lookup(context, context.resolver.mx, target) if host != "."]
            if len(exchanges) > MAX_MX_NAMES:
                raise _PermError(f"{target} has more than {MAX_MX_NAMES} MX names")
            for host in exchanges:
                if _in_any(ip, await _addresses(context, host, counts_void=False), term):
                    return True
            return False
        case "ptr":  # RFC 7208 §5.5
            context.count()
            target = await _expand_domain(context, term.spec, domain) if term.spec else domain
            names = await _validated_names(context)
            return any(name == target or name.endswith("." + target) for name in names)
        case "exists":  # RFC 7208 §5.7: always an A query
            context.count()
            assert term.spec is not None
            target = await _expand_domain(context, term.spec, domain)
            return bool(await _lookup(context, context.resolver.a, target))
    raise AssertionError(term.name)  # pragma: no cover - parse_record admits no other name


async def _lookup(context: _Context, query: Callable[[str], Awaitable[list[_T]]], name: str) -> list[_T]:
    """A lookup whose empty answer or NXDOMAIN counts as void (RFC 7208 §4.6.4)."""
    try:
        found = await query(name)
    except DomainNotFound:
        found = []
    except TemporaryLookupFailure as exc:
        raise _TempError(f"DNS: {exc}") from exc
    if not found:
        context.void()
    return found


async def _addresses(context: _Context, host: str, *, counts_void: bool) -> list[IpAddress]:
    """The host's addresses of the connection's family (RFC 7208 §5.3)."""
    query = context.resolver.a if context.ip.version == 4 else context.resolver.aaaa
    if counts_void:
        texts = await _lookup(context, query, host)
    else:
        try:
            texts = await query(host)
        except DomainNotFound:
            texts = []
        except TemporaryLookupFailure as exc:
            raise _TempError(f"DNS: {exc}") from exc
    found: list[IpAddress] = []
    for text in texts:
        try:
            found.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return found


def _in_any(ip: IpAddress, addresses: list[IpAddress], term: _Term) -> bool:
    prefix = term.cidr4 if ip.version == 4 else term.cidr6
    return any(
        address.version == ip.version and ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        for address in addresses
    )


async def _validated_names(context: _Context) -> list[str]:
    """The client's PTR names whose forward lookup gives its address back (RFC 7208 §5.5); DNS errors
    make the mechanism not match rather than fail."""
    try:
        names = (await context.resolver.ptr(str(context.ip)))[:MAX_PTR_NAMES]
    except (DomainNotFound, TemporaryLookupFailure):
        return []
    query = context.resolver.a if context.ip.version == 4 else context.resolver.aaaa
    validated = []
    for name in names:
        try:
            texts = await query(name)
        except (DomainNotFound, TemporaryLookupFailure):
            continue
        if any(_same_address(text, context.ip) for text in texts):
            validated.append(name.lower())
    return validated


def _same_address(text: str, ip: IpAddress) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


# --- macros (RFC 7208 §7) ------------------------------------------------------------------------------


async def _expand_domain(context: _Context, spec: str, domain: str) -> str:
    """A domain-spec with its macros expanded, cut from the left to 253 octets (RFC 7208 §7.3)."""
    name = (await expand(context, spec, domain, is_exp=False)).rstrip(".").lower()
    while len(name) > MAX_DOMAIN and "." in name:
        name = name.partition(".")[2]
    return name


async def expand(context: _Context, text: str, domain: str, *, is_exp: bool) -> str:
    out: list[str] = []
    position = 0
    while True:
        index = text.find("%", position)
        if index < 0:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position:index])
        match = _MACRO.match(text, index)
        assert match is not None
        letter, digits, reverse, delimiters, single = match.groups()
        if letter is None:
            if single not in ("%", "_", "-"):
                raise _PermError(f"bad macro in {text!r}")
            out.append({"%": "%", "_": " ", "-": "%20"}[single])
        else:
            if letter.lower() not in (_EXP_LETTERS if is_exp else _DOMAIN_LETTERS):
                raise _PermError(f"bad macro letter in {text!r}")
            value = await _macro_value(context, letter.lower(), domain)
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                count = int(digits)
                if count == 0:
                    raise _PermError(f"zero macro length in {text!r}")
                parts = parts[-count:]
            value = ".".join(parts)
            out.append(urllib.parse.quote(value, safe="") if letter.isupper() else value)
        position = match.end()


async def _macro_value(context: _Context, letter: str, domain: str) -> str:
    ip = context.ip
    match letter:
        case "s":
            return context.sender
        case "l":
            return context.sender.rpartition("@")[0]
        case "o":
            return context.sender.rpartition("@")[2]
        case "d":
            return domain
        case "i":  # IPv6 as dot-separated nibbles (RFC 7208 §7.3)
            return str(ip) if ip.version == 4 else ".".join(ip.exploded.replace(":", ""))
        case "c":
            return str(ip)
        case "v":
            return "in-addr" if ip.version == 4 else "ip6"
        case "h":
            return context.helo
        case "r":
            return context.receiver
        case "t":
            return str(int(context.now()))
        case "p":
            if context.validated_name is None:
                names = await _validated_names(context)
                exact = [name for name in names if name == domain or name.endswith("." + domain)]
                context.validated_name = (exact or names or ["unknown"])[0]
            return context.validated_name
    raise AssertionError(letter)  # pragma: no cover - the callers check the letter


async def _explanation(context: _Context, spec: str, domain: str) -> str:
    """The exp= text; any problem just gives no explanation (RFC 7208 §6.2)."""
    try:
        target = await _expand_domain(context, spec, domain)
        texts = await context.resolver.txt(target)
        if len(texts) != 1:
            return ""
        text = texts[0].decode("ascii")
        return (await expand(context, text, domain, is_exp=True))[:500]
    except (_PermError, _TempError, DomainNotFound, TemporaryLookupFailure, UnicodeDecodeError):
        return ""
