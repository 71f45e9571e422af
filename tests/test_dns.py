"""pochta.dns against a real DNS server on 127.0.0.1: a tiny UDP responder answering from a table."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import cast

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from pochta.dns import DnsResolver, DomainNotFound, TemporaryLookupFailure, parse_nameserver
from pochta.outbound.mx import Route, Unroutable, find_route

ZONE: dict[str, dict[str, list[str]]] = {
    "example.test.": {"MX": ["10 mx1.example.test.", "20 mx2.example.test."], "TXT": ['"v=spf1 " "-all"']},
    "mx1.example.test.": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "bare.test.": {"A": ["192.0.2.5"]},
    "nullmx.test.": {"MX": ["0 ."]},
}
SERVFAIL = "broken.test."
SILENT = "silent.test."


class _Responder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name == SILENT:
            return
        response = dns.message.make_response(query)
        if name == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in ZONE:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            kind = dns.rdatatype.to_text(question.rdtype)
            values = ZONE[name].get(kind, [])
            if values:
                response.answer.append(dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, kind, *values))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def nameserver() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Responder, local_addr=("127.0.0.1", 0))
    host, port = transport.get_extra_info("sockname")[:2]
    yield f"{host}:{port}"
    transport.close()


async def test_lookups_against_a_real_server(nameserver: str) -> None:
    resolver = DnsResolver(nameservers=[nameserver], timeout=2)
    assert sorted(await resolver.mx("example.test")) == [(10, "mx1.example.test"), (20, "mx2.example.test")]
    assert sorted(await resolver.addresses("mx1.example.test")) == ["127.0.0.1", "::1"]
    assert await resolver.addresses("bare.test") == ["192.0.2.5"]
    assert await resolver.mx("bare.test") == []
    assert await resolver.txt("example.test") == [b"v=spf1 -all"]
    assert await resolver.mx("nullmx.test") == [(0, ".")]
    with pytest.raises(DomainNotFound):
        await resolver.mx("nowhere.test")
    with pytest.raises(DomainNotFound):
        await resolver.addresses("nowhere.test")
    with pytest.raises(TemporaryLookupFailure):
        await resolver.mx("broken.test")


async def test_timeout_is_temporary(nameserver: str) -> None:
    resolver = DnsResolver(nameservers=[nameserver], timeout=0.3)
    with pytest.raises(TemporaryLookupFailure):
        await resolver.mx("silent.test")


async def test_mx_selection_over_real_dns(nameserver: str) -> None:
    resolver = DnsResolver(nameservers=[nameserver], timeout=2)
    shuffle = random.Random(1).shuffle
    assert await find_route("example.test", resolver=resolver, shuffle=shuffle) == Route(
        hosts=("mx1.example.test", "mx2.example.test")
    )
    assert await find_route("bare.test", resolver=resolver, shuffle=shuffle) == Route(
        hosts=("bare.test",), is_implicit=True
    )
    null = await find_route("nullmx.test", resolver=resolver, shuffle=shuffle)
    assert isinstance(null, Unroutable) and null.reply.status == "5.1.10"
    broken = await find_route("broken.test", resolver=resolver, shuffle=shuffle)
    assert isinstance(broken, Unroutable) and broken.reply.status == "4.4.3"


def test_parse_nameserver() -> None:
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("[::1]") == ("::1", 53)
    assert parse_nameserver("::1") == ("::1", 53)
