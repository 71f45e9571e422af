"""pochta.dns against a real DNS server on 127.0.0.1: a tiny UDP responder answering from a table."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from pochta.dns import DnsResolver, DomainNotFound, TemporaryLookupFailure, parse_nameserver
from pochta.outbound.mx import Route, Unroutable, find_route

from .dnsserver import Zone, serving

ZONE: Zone = {
    "example.test.": {"MX": ["10 mx1.example.test.", "20 mx2.example.test."], "TXT": ['"v=spf1 " "-all"']},
    "mx1.example.test.": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "bare.test.": {"A": ["192.0.2.5"]},
    "nullmx.test.": {"MX": ["0 ."]},
}


@pytest.fixture
async def nameserver() -> AsyncIterator[str]:
    async with serving(ZONE) as address:
        yield address


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


async def test_answers_are_cached_for_their_ttl_and_negative_ones_only_with_an_soa() -> None:
    zone: dict[str, dict[str, list[str]]] = {
        "cached.test.": {
            "MX": ["10 mx1.cached.test."],
            "SOA": ["ns.cached.test. h.cached.test. 1 3600 600 86400 300"],
            "TTL": ["300"],
        },
        "mx1.cached.test.": {"A": ["192.0.2.1"], "TTL": ["300"]},
        "fresh.test.": {"MX": ["10 mx1.fresh.test."]},  # the server's TTL: 0
    }
    async with serving(lambda: zone) as nameserver:
        resolver = DnsResolver(nameservers=[nameserver], timeout=2)
        assert await resolver.mx("cached.test") == [(10, "mx1.cached.test")]
        assert await resolver.addresses("mx1.cached.test") == ["192.0.2.1"]  # no AAAA: a NODATA under the SOA
        with pytest.raises(DomainNotFound):
            await resolver.txt("_mta-sts.cached.test")  # NXDOMAIN under the SOA
        with pytest.raises(DomainNotFound):
            await resolver.txt("nowhere.test")  # NXDOMAIN without an SOA
        assert await resolver.mx("fresh.test") == [(10, "mx1.fresh.test")]
        zone["cached.test."]["MX"] = ["10 mx2.cached.test."]
        zone["mx1.cached.test."]["AAAA"] = ["2001:db8::1"]
        zone["_mta-sts.cached.test."] = {"TXT": ['"v=STSv1; id=1"']}
        zone["nowhere.test."] = {"TXT": ['"here now"']}
        zone["fresh.test."]["MX"] = ["10 mx2.fresh.test."]
        assert await resolver.mx("cached.test") == [(10, "mx1.cached.test")]  # within its TTL
        assert await resolver.addresses("mx1.cached.test") == ["192.0.2.1"]
        with pytest.raises(DomainNotFound):
            await resolver.txt("_mta-sts.cached.test")
        assert await resolver.txt("nowhere.test") == [b"here now"]  # RFC 2308 §5: no SOA, not cached
        assert await resolver.mx("fresh.test") == [(10, "mx2.fresh.test")]  # TTL 0: asked again
        uncached = DnsResolver(nameservers=[nameserver], timeout=2, cache_size=0)
        assert await uncached.mx("cached.test") == [(10, "mx2.cached.test")]


@pytest.mark.parametrize(("ttl", "queries"), [(300, 1), (0, 2)])
async def test_answers_are_cached_for_their_ttl(ttl: int, queries: int) -> None:
    asked: list[int] = []

    def zone() -> Zone:
        asked.append(1)
        return {"example.test.": {"TXT": ['"v=spf1 -all"']}}

    async with serving(zone, ttl=ttl) as address:
        resolver = DnsResolver(nameservers=[address], timeout=2.0)
        for _ in range(2):
            assert await resolver.txt("example.test") == [b"v=spf1 -all"]
    assert len(asked) == queries
