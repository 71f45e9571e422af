"""DNS blocklists: is the connecting IP (DNSBL, RFC 5782) or a linked domain (URIBL) listed?

A listing is an A record in 127.0.0.0/8 for the reversed address (or the domain) under the list's zone.
Lists answer 127.255.255.x for "you may not ask" (e.g. through a public resolver): that is not a listing.
A lookup that fails or times out counts as "not listed": a DNS outage must not make mail spam.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from pochta.dns import DnsError

log = logging.getLogger(__name__)

MAX_DOMAINS = 10  # linked domains looked up per message
TIMEOUT = 3.0  # seconds for all the lookups of one message


class AddressResolver(Protocol):
    async def addresses(self, host: str) -> list[str]: ...


def reversed_name(ip: str, zone: str) -> str | None:
    """The RFC 5782 §2.1/§2.4 query name for `ip` under `zone`, or None for an address no list holds."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified:
        return None
    if address.version == 4:
        return ".".join(reversed(ip.split("."))) + "." + zone
    return ".".join(reversed(address.exploded.replace(":", ""))) + "." + zone  # one label per nibble


def registered_domain(host: str) -> str:
    """The last two labels (three under a two-letter country code with a short second label, e.g. co.uk)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _is_listing(addresses: Iterable[str]) -> bool:
    return any(a.startswith("127.") and not a.startswith("127.255.255.") for a in addresses)


class Blocklists:
    def __init__(self, resolver: AddressResolver, *, dnsbl: Sequence[str], uribl: Sequence[str]) -> None:
        self._resolver = resolver
        self.dnsbl = tuple(dnsbl)
        self.uribl = tuple(uribl)

    def __bool__(self) -> bool:
        return bool(self.dnsbl or self.uribl)

    async def lookup(self, ip: str, hosts: Iterable[str]) -> tuple[list[str], list[str]]:
        """The DNSBL zones listing `ip` and the URIBL zones listing any of `hosts`' domains."""
        queries: list[tuple[str, str, str]] = []  # (kind, zone, name)
        for zone in self.dnsbl:
            name = reversed_name(ip, zone)
            if name is not None:
                queries.append(("dnsbl", zone, name))
        domains = sorted({registered_domain(host) for host in hosts if "." in host})[:MAX_DOMAINS]
        for zone in self.uribl:
            queries += [("uribl", zone, f"{domain}.{zone}") for domain in domains]
        if not queries:
            return [], []
        try:
            async with asyncio.timeout(TIMEOUT):
                answers = await asyncio.gather(*(self._listed(name) for _, _, name in queries), return_exceptions=False)
        except TimeoutError:
            log.warning("blocklist lookups timed out ip=%s", ip)
            return [], []
        dnsbl = sorted({zone for (kind, zone, _), hit in zip(queries, answers, strict=True) if hit and kind == "dnsbl"})
        uribl = sorted({zone for (kind, zone, _), hit in zip(queries, answers, strict=True) if hit and kind == "uribl"})
        return dnsbl, uribl

    async def _listed(self, name: str) -> bool:
        try:
            return _is_listing(await self._resolver.addresses(name))
        except DnsError:
            return False
