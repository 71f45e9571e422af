"""DNS blocklists through the real resolver against a real DNS server on 127.0.0.1."""

from __future__ import annotations

from pochta.dns import DnsResolver
from pochta.filters.spam.dnsbl import Blocklists, registered_domain, reversed_name

from ...dnsserver import serving


def test_query_names() -> None:
    assert reversed_name("81.2.69.142", "bl.test") == "142.69.2.81.bl.test"
    assert reversed_name("2a00:1450:4001:81b::200e", "bl.test") == (
        "e.0.0.2.0.0.0.0.0.0.0.0.0.0.0.0.b.1.8.0.1.0.0.4.0.5.4.1.0.0.a.2.bl.test"
    )
    assert reversed_name("127.0.0.1", "bl.test") is None  # our own clients are never looked up
    assert reversed_name("10.1.2.3", "bl.test") is None
    assert reversed_name("not an ip", "bl.test") is None
    assert registered_domain("www.Shop.Example.COM") == "example.com"
    assert registered_domain("a.b.example.co.uk") == "example.co.uk"


async def test_listed_ip_and_domains() -> None:
    zone = {
        "142.69.2.81.dnsbl.test.": {"A": ["127.0.0.2"]},
        "142.69.2.81.refusing.test.": {"A": ["127.255.255.254"]},  # "you may not ask": not a listing
        "spammer.example.uribl.test.": {"A": ["127.0.0.2"]},
    }
    async with serving(zone) as nameserver:
        lists = Blocklists(
            DnsResolver(nameservers=[nameserver], timeout=2.0),
            dnsbl=["dnsbl.test", "refusing.test", "broken.test"],
            uribl=["uribl.test"],
        )
        assert await lists.lookup("81.2.69.142", {"www.spammer.example", "good.example"}) == (
            ["dnsbl.test"],
            ["uribl.test"],
        )
        assert await lists.lookup("81.2.69.143", {"good.example"}) == ([], [])
    assert not Blocklists(DnsResolver(nameservers=["127.0.0.1:9"]), dnsbl=[], uribl=[])
