"""A tiny authoritative DNS server for tests: answers real UDP queries on 127.0.0.1 from a table.

In-process: `async with serving(zone) as "host:port"`. As its own process (the e2e tests): run
`python tests/dnsserver.py ZONE.json`; it prints `host:port` on its first line, then serves until killed,
reading the file at every query.
A zone maps names (with the final dot) to {"MX": ["10 mx.example.test."], "A": [...], ...}. A name's
"TTL": ["300"] sets the TTL of its records (the server's `ttl`, 0 unless told, otherwise); its "SOA"
goes with every negative answer (NXDOMAIN, or no record of the type) for names at or below it, as a
real zone's does (RFC 2308 §3), with the SOA's own TTL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import cast

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = Mapping[str, Mapping[str, list[str]]]
SERVFAIL = "broken.test."  # answered SERVFAIL
SILENT = "silent.test."  # never answered


class Responder(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone | Callable[[], Zone], *, ttl: int = 0) -> None:
        self._zone = zone
        self._ttl = ttl  # 0 by default: tests change records while we run, and resolvers cache by TTL
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def zone(self) -> Zone:
        return self._zone() if callable(self._zone) else self._zone

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        zone = self.zone
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name == SILENT:
            return
        response = dns.message.make_response(query)
        if name == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            kind = dns.rdatatype.to_text(question.rdtype)
            values = zone.get(name, {}).get(kind, [])
            if name not in zone:
                response.set_rcode(dns.rcode.NXDOMAIN)
            if values:
                ttl = int(zone[name].get("TTL", [str(self._ttl)])[0])
                response.answer.append(dns.rrset.from_text(question.name, ttl, dns.rdataclass.IN, kind, *values))
            else:
                _add_soa(response, name, zone, self._ttl)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


def _add_soa(response: dns.message.Message, name: str, zone: Zone, default_ttl: int) -> None:
    """The closest enclosing SOA in the zone, if any, in the authority section of a negative answer."""
    labels = name.split(".")
    for start in range(len(labels)):
        owner = ".".join(labels[start:]) or "."
        soa = zone.get(owner, {}).get("SOA")
        if soa:
            ttl = int(zone[owner].get("TTL", [str(default_ttl)])[0])
            response.authority.append(dns.rrset.from_text(owner, ttl, dns.rdataclass.IN, "SOA", *soa))
            return


@asynccontextmanager
async def serving(zone: Zone | Callable[[], Zone], *, ttl: int = 0) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: Responder(zone, ttl=ttl), local_addr=("127.0.0.1", 0))
    host, port = transport.get_extra_info("sockname")[:2]
    try:
        yield f"{host}:{port}"
    finally:
        transport.close()


async def _main(path: str) -> None:
    def zone() -> Zone:  # read at every query, so a test can change its records while we run
        with open(path) as handle:
            loaded: Zone = json.load(handle)
        return loaded

    async with serving(zone) as address:
        print(address, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
