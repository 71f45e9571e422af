"""Which hosts to try for a domain, in order (RFC 5321 §5.1), with null MX (RFC 7505).

The lookups go through a :class:`Resolver` (``pochta.dns.DnsResolver``, or a table in tests); the
randomness through a ``shuffle`` callable such as ``random.shuffle``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from pochta.dns import DomainNotFound, TemporaryLookupFailure
from pochta.proto.smtp.replies import Reply


class Resolver(Protocol):
    """What MX selection asks DNS. Raise DomainNotFound for NXDOMAIN, TemporaryLookupFailure otherwise;
    return an empty list when the name exists without such records."""

    async def mx(self, domain: str) -> list[tuple[int, str]]: ...

    async def addresses(self, host: str) -> list[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """The hosts to try, most preferred first; ``is_implicit`` when the domain had no MX (RFC 5321 §5.1)."""

    hosts: tuple[str, ...]
    is_implicit: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Unroutable:
    """No host to try: bounce on a 5xx, retry later on a 4xx."""

    reply: Reply


def null_mx(domain: str) -> Reply:
    return Reply(code=556, status="5.1.10", text=f"{domain} does not accept mail (null MX)")  # RFC 7505 §4.1


def _no_such_domain(domain: str) -> Reply:
    return Reply(code=550, status="5.1.2", text=f"domain {domain} does not exist")  # RFC 3463 X.1.2


def _temporary(domain: str, error: Exception) -> Reply:
    return Reply(code=451, status="4.4.3", text=f"DNS lookup for {domain} failed: {error}")  # RFC 3463 X.4.3


def _ordered(records: list[tuple[int, str]], shuffle: Callable[[list[str]], None]) -> list[tuple[int, str]]:
    """By preference, lowest first; shuffled within a preference (RFC 5321 §5.1); each host once."""
    by_preference: dict[int, list[str]] = {}
    seen: set[str] = set()
    for preference, host in sorted(records):
        name = host.rstrip(".").lower()
        if name and name not in seen:
            seen.add(name)
            by_preference.setdefault(preference, []).append(name)
    ordered: list[tuple[int, str]] = []
    for preference in sorted(by_preference):
        group = by_preference[preference]
        shuffle(group)
        ordered += [(preference, host) for host in group]
    return ordered


async def find_route(
    domain: str,
    *,
    resolver: Resolver,
    shuffle: Callable[[list[str]], None],
    local_names: Collection[str] = (),
) -> Route | Unroutable:
    """The hosts to deliver mail for ``domain`` to, or why there are none.

    ``local_names`` are this server's own names: an MX pointing to us, and every less preferred one,
    is dropped (RFC 5321 §5.1), so a misconfigured domain does not loop.
    """
    domain = domain.rstrip(".").lower()
    if domain.startswith("[") and domain.endswith("]"):  # RFC 5321 §4.1.3: an address literal, no lookup
        return Route(hosts=(domain[1:-1].removeprefix("ipv6:"),), is_implicit=True)
    try:
        records = await resolver.mx(domain)
    except DomainNotFound:
        return Unroutable(reply=_no_such_domain(domain))
    except TemporaryLookupFailure as exc:
        return Unroutable(reply=_temporary(domain, exc))
    if len(records) == 1 and records[0][1].rstrip(".") == "":  # RFC 7505 §3: one MX, exchange "."
        return Unroutable(reply=null_mx(domain))
    records = [(preference, host) for preference, host in records if host.rstrip(".")]  # §3: "." among others
    if not records:
        return await _implicit_mx(domain, resolver)
    ordered = _ordered(records, shuffle)
    local = {name.rstrip(".").lower() for name in local_names}
    own = [preference for preference, host in ordered if host in local]
    if own:  # RFC 5321 §5.1: drop ourselves and every MX less preferred than us
        ordered = [(preference, host) for preference, host in ordered if preference < min(own)]
        if not ordered:  # we are the best MX, yet the mail is not ours: a routing loop (RFC 3463 X.4.6)
            return Unroutable(reply=Reply(code=554, status="5.4.6", text=f"mail for {domain} loops back to myself"))
    hosts = [host for _, host in ordered]
    return Route(hosts=tuple(hosts))


async def _implicit_mx(domain: str, resolver: Resolver) -> Route | Unroutable:
    """No MX records: the domain itself, if it has an address (RFC 5321 §5.1)."""
    try:
        addresses = await resolver.addresses(domain)
    except DomainNotFound:
        return Unroutable(reply=_no_such_domain(domain))
    except TemporaryLookupFailure as exc:
        return Unroutable(reply=_temporary(domain, exc))
    if not addresses:
        return Unroutable(reply=Reply(code=550, status="5.1.2", text=f"{domain} has no MX or address records"))
    return Route(hosts=(domain,), is_implicit=True)
