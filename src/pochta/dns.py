"""DNS lookups for mail: the errors every check tells apart, and a resolver over dnspython's asyncio API.

Consumers (MX selection, SPF, DKIM, DMARC, DNSBL) take a resolver object, so tests can point them at a
table or at a DNS server they start themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar, cast

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

T = TypeVar("T")


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
    """Lookups through dnspython; ``nameservers`` as ``host:port`` strings, or None for /etc/resolv.conf.

    Answers are cached for their TTL (negative ones for the SOA minimum, RFC 2308 §5), as a caching
    resolver would: the queue asks for the same MX, TXT and address records for every message to a
    domain, the checks the same SPF, DKIM and DMARC names for every message from a sender, and a stub
    resolver is often all a mail host has. The cache holds the converted records (or the NXDOMAIN), so
    a hit builds no query and parses no names: the queue's profile showed those at thousands of lookups
    a second. ``cache_size`` 0 turns it off.
    """

    def __init__(
        self, *, nameservers: Sequence[str] | None = None, timeout: float = 5.0, cache_size: int = 20_000
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in map(parse_nameserver, nameservers)
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        self._resolver = resolver
        self._cache_size = cache_size
        # (name, type) → (expiry as time.time(), the converted records, or None for NXDOMAIN)
        self._answers: dict[tuple[str, dns.rdatatype.RdataType], tuple[float, list[object] | None]] = {}

    async def _query(
        self, name: str, rdtype: dns.rdatatype.RdataType, convert: Callable[[dns.rdata.Rdata], T]
    ) -> list[T]:
        """The records of one type, converted; from the cache while their TTL lasts."""
        key = (name, rdtype)
        cached = self._answers.get(key)
        if cached is not None and cached[0] > time.time():
            if cached[1] is None:
                raise DomainNotFound(name)
            return cast(list[T], list(cached[1]))
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            self._remember(key, None, exc.kwargs.get("responses", {}).values())
            raise DomainNotFound(name) from exc
        except dns.resolver.NoAnswer as exc:  # the name exists without records of this type (NODATA)
            self._remember(key, [], [exc.kwargs.get("response")])
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.YXDOMAIN) as exc:
            raise TemporaryLookupFailure(f"{name} {rdtype.name}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise TemporaryLookupFailure(f"{name} {rdtype.name}: {exc}") from exc
        values = [convert(record) for record in answer]
        if self._cache_size:
            self._store(key, cast(list[object], values), answer.expiration)
        return values

    def _remember(
        self, key: tuple[str, dns.rdatatype.RdataType], values: list[object] | None, responses: Iterable[object]
    ) -> None:
        """Cache a negative answer for its SOA's negative TTL; none without an SOA (RFC 2308 §5)."""
        for response in responses:
            if not (self._cache_size and isinstance(response, dns.message.QueryMessage)):
                continue
            if any(rrset.rdtype == dns.rdatatype.SOA for rrset in response.authority):
                self._store(key, values, time.time() + response.resolve_chaining().minimum_ttl)
            return

    def _store(self, key: tuple[str, dns.rdatatype.RdataType], values: list[object] | None, expiration: float) -> None:
        if key not in self._answers and len(self._answers) >= self._cache_size:
            del self._answers[next(iter(self._answers))]  # the oldest entry
        self._answers[key] = (expiration, values)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs; the exchange without its final dot, "." for a null MX (RFC 7505)."""
        return await self._query(domain, dns.rdatatype.MX, _mx)

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA addresses; NXDOMAIN only when both say so."""
        results: list[list[str] | BaseException] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            cached = self._answers.get((host, rdtype))
            if cached is None or cached[0] <= time.time():
                break
            results.append(DomainNotFound(host) if cached[1] is None else cast(list[str], list(cached[1])))
        else:  # both from the cache: no tasks to gather
            return _addresses(results)
        return _addresses(
            await asyncio.gather(
                self._query(host, dns.rdatatype.A, _text),
                self._query(host, dns.rdatatype.AAAA, _text),
                return_exceptions=True,
            )
        )

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record's strings joined (RFC 7208 §3.3)."""
        return await self._query(name, dns.rdatatype.TXT, _txt)

    async def a(self, host: str) -> list[str]:
        """IPv4 addresses only (SPF's ``a``/``exists`` on an IPv4 connection, RFC 7208 §5.3)."""
        return await self._query(host, dns.rdatatype.A, _text)

    async def aaaa(self, host: str) -> list[str]:
        return await self._query(host, dns.rdatatype.AAAA, _text)

    async def ptr(self, ip: str) -> list[str]:
        """The names of an address (in-addr.arpa / ip6.arpa), without their final dot."""
        return await self._query(dns.reversename.from_address(ip).to_text(), dns.rdatatype.PTR, _ptr)


def _mx(record: dns.rdata.Rdata) -> tuple[int, str]:
    return record.preference, _host(record.exchange)  # type: ignore[attr-defined]


def _text(record: dns.rdata.Rdata) -> str:
    return record.to_text()


def _txt(record: dns.rdata.Rdata) -> bytes:
    return b"".join(record.strings)  # type: ignore[attr-defined]


def _ptr(record: dns.rdata.Rdata) -> str:
    return _host(record.target)  # type: ignore[attr-defined]


def _addresses(results: Sequence[list[str] | BaseException]) -> list[str]:
    found: list[str] = []
    errors: list[BaseException] = []
    for result in results:
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            found += result
    if found or not errors:
        return found
    for error in errors:
        if not isinstance(error, DnsError):
            raise error  # a bug or a cancellation, not an answer
    temporary = [error for error in errors if not isinstance(error, DomainNotFound)]
    raise temporary[0] if temporary else errors[0]
