"""DNS lookups for mail: the errors every check tells apart, and a resolver over dnspython's asyncio API.

Consumers (MX selection, SPF, DKIM, DMARC, DNSBL) take a resolver object, so tests can point them at a
table or at a DNS server they start themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename


class DnsError(Exception):
    """A DNS lookup did not give an answer."""


class DomainNotFound(DnsError):
    """NXDOMAIN: the name does not exist (a permanent answer, RFC 1035 §4.1.1 RCODE 3)."""


class TemporaryLookupFailure(DnsError):
    """SERVFAIL, a timeout or no reachable server: try again later."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:53"``, ``"::1"`` or ``"10.0.0.1"`` → (address, port); port 53 by default."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def _host(name: dns.name.Name) -> str:
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True).lower()


class Resolver(Protocol):
    """What the mail checks ask DNS (SPF, DKIM, DMARC, ARC). Each raises DomainNotFound for NXDOMAIN and
    TemporaryLookupFailure otherwise; an empty list means the name exists without such records (NODATA)."""

    async def mx(self, domain: str) -> list[tuple[int, str]]: ...

    async def a(self, host: str) -> list[str]: ...

    async def aaaa(self, host: str) -> list[str]: ...

    async def ptr(self, ip: str) -> list[str]: ...

    async def txt(self, name: str) -> list[bytes]: ...


class DnsResolver:
    """Lookups through dnspython; ``nameservers`` as ``host:port`` strings, or None for /etc/resolv.conf."""

    def __init__(self, *, nameservers: Sequence[str] | None = None, timeout: float = 5.0) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in map(parse_nameserver, nameservers)
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        # Answers are kept for their TTL (NXDOMAIN too): every message from a sender asks the same SPF,
        # DKIM and DMARC names, and a stub resolver is often all a mail host has.
        resolver.cache = dns.resolver.LRUCache(20000)
        self._resolver = resolver

    async def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DomainNotFound(name) from exc
        except dns.resolver.NoAnswer:
            return []  # the name exists without records of this type (NODATA)
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.YXDOMAIN) as exc:
            raise TemporaryLookupFailure(f"{name} {rdtype.name}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise TemporaryLookupFailure(f"{name} {rdtype.name}: {exc}") from exc
        return list(answer)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs; the exchange without its final dot, "." for a null MX (RFC 7505)."""
        records = await self._query(domain, dns.rdatatype.MX)
        return [(record.preference, _host(record.exchange)) for record in records]  # type: ignore[attr-defined]

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA addresses; NXDOMAIN only when both say so."""
        results = await asyncio.gather(
            self._query(host, dns.rdatatype.A), self._query(host, dns.rdatatype.AAAA), return_exceptions=True
        )
        found: list[str] = []
        errors: list[BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                found += [record.to_text() for record in result]
        if found or not errors:
            return found
        for error in errors:
            if not isinstance(error, DnsError):
                raise error  # a bug or a cancellation, not an answer
        temporary = [error for error in errors if not isinstance(error, DomainNotFound)]
        raise temporary[0] if temporary else errors[0]

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record's strings joined (RFC 7208 §3.3)."""
        records = await self._query(name, dns.rdatatype.TXT)
        return [b"".join(record.strings) for record in records]  # type: ignore[attr-defined]

    async def a(self, host: str) -> list[str]:
        """IPv4 addresses only (SPF's ``a``/``exists`` on an IPv4 connection, RFC 7208 §5.3)."""
        return [record.to_text() for record in await self._query(host, dns.rdatatype.A)]

    async def aaaa(self, host: str) -> list[str]:
        return [record.to_text() for record in await self._query(host, dns.rdatatype.AAAA)]

    async def ptr(self, ip: str) -> list[str]:
        """The names of an address (in-addr.arpa / ip6.arpa), without their final dot."""
        name = dns.reversename.from_address(ip).to_text()
        records = await self._query(name, dns.rdatatype.PTR)
        return [_host(record.target) for record in records]  # type: ignore[attr-defined]
