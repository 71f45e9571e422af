"""SPF (RFC 7208) against a table resolver: the examples of Appendix A and §7.4, the limits, the errors."""

from __future__ import annotations

import pytest

from pochta.mailauth.spf import SpfResult, check_host

from .table import Table, TableResolver

# RFC 7208 Appendix A's zone.
APPENDIX_A: Table = {
    "example.com.": {"MX": ["10 mail-a.example.com.", "20 mail-b.example.com."], "A": ["192.0.2.10", "192.0.2.11"]},
    "amy.example.com.": {"A": ["192.0.2.65"]},
    "bob.example.com.": {"A": ["192.0.2.66"]},
    "mail-a.example.com.": {"A": ["192.0.2.129"]},
    "mail-b.example.com.": {"A": ["192.0.2.130"]},
    "www.example.com.": {"A": ["192.0.2.10", "192.0.2.11"]},
    "example.org.": {"MX": ["10 mail-c.example.org."]},
    "mail-c.example.org.": {"A": ["192.0.2.140"]},
    "10.2.0.192.in-addr.arpa.": {"PTR": ["example.com."]},
    "11.2.0.192.in-addr.arpa.": {"PTR": ["example.com."]},
    "65.2.0.192.in-addr.arpa.": {"PTR": ["amy.example.com."]},
    "66.2.0.192.in-addr.arpa.": {"PTR": ["bob.example.com."]},
    "129.2.0.192.in-addr.arpa.": {"PTR": ["mail-a.example.com."]},
    "130.2.0.192.in-addr.arpa.": {"PTR": ["mail-b.example.com."]},
    "140.2.0.192.in-addr.arpa.": {"PTR": ["mail-c.example.org."]},
    "4.0.0.10.in-addr.arpa.": {"PTR": ["bob.example.com."]},
}
HOSTS = [
    "192.0.2.10",
    "192.0.2.11",
    "192.0.2.65",
    "192.0.2.66",
    "192.0.2.129",
    "192.0.2.130",
    "192.0.2.140",
    "10.0.0.4",
]


def _with(table: Table, name: str, txt: str | list[str]) -> Table:
    records = dict(table)
    records[name] = {**records.get(name, {}), "TXT": [txt] if isinstance(txt, str) else txt}
    return records


async def _passing(record: str) -> list[str]:
    resolver = TableResolver(_with(APPENDIX_A, "example.com.", record))
    passing = []
    for ip in HOSTS:
        outcome = await check_host(resolver, ip=ip, domain="example.com", sender="user@example.com")
        assert outcome.result in (SpfResult.PASS, SpfResult.FAIL), (ip, outcome)
        if outcome.result is SpfResult.PASS:
            passing.append(ip)
    return passing


@pytest.mark.parametrize(
    ("record", "passing"),
    [
        ("v=spf1 +all", HOSTS),
        ("v=spf1 a -all", ["192.0.2.10", "192.0.2.11"]),
        ("v=spf1 a:example.org -all", []),
        ("v=spf1 mx -all", ["192.0.2.129", "192.0.2.130"]),
        ("v=spf1 mx:example.org -all", ["192.0.2.140"]),
        ("v=spf1 mx mx:example.org -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        ("v=spf1 mx/30 mx:example.org/30 -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        ("v=spf1 ptr -all", ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"]),
        ("v=spf1 ip4:192.0.2.128/28 -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
    ],
)
async def test_appendix_a1_simple_examples(record: str, passing: list[str]) -> None:
    assert await _passing(record) == passing


async def test_appendix_a1_mx_cidr_covers_the_neighbours() -> None:
    resolver = TableResolver(_with(APPENDIX_A, "example.com.", "v=spf1 mx/30 mx:example.org/30 -all"))
    for ip, result in [("192.0.2.131", "pass"), ("192.0.2.143", "pass"), ("192.0.2.132", "fail")]:
        assert (await check_host(resolver, ip=ip, domain="example.com", sender="a@example.com")).result == result


async def test_appendix_a2_multiple_domains() -> None:
    table = _with(APPENDIX_A, "example.com.", "v=spf1 include:example.org include:example.net -all")
    table = _with(table, "example.org.", "v=spf1 mx -all")
    table = _with(table, "example.net.", "v=spf1 ip4:192.0.2.66 -all")
    resolver = TableResolver(table)
    for ip, result in [("192.0.2.140", "pass"), ("192.0.2.66", "pass"), ("192.0.2.129", "fail")]:
        assert (await check_host(resolver, ip=ip, domain="example.com", sender="a@example.com")).result == result


async def test_appendix_a3_dnsbl_style_with_explanation() -> None:
    table = _with(APPENDIX_A, "example.com.", "v=spf1 mx -all exp=explain._spf.%{d}")
    table = _with(table, "explain._spf.example.com.", "See http://%{d}/why.html?s=%{S}&i=%{I}")
    resolver = TableResolver(table)
    outcome = await check_host(resolver, ip="192.0.2.65", domain="example.com", sender="user@example.com")
    assert outcome.result is SpfResult.FAIL
    assert outcome.explanation == "See http://example.com/why.html?s=user%40example.com&i=192.0.2.65"
    passing = await check_host(resolver, ip="192.0.2.129", domain="example.com", sender="user@example.com")
    assert passing.result is SpfResult.PASS
    assert passing.explanation == ""


async def test_appendix_a4_multiple_requirements() -> None:
    # The host must be in 192.0.2.0/24 and its validated name must be in example.com.
    table = _with(APPENDIX_A, "example.com.", "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all")
    table = _with(table, "ip4._spf.example.com.", "v=spf1 -ip4:192.0.2.0/24 +all")
    # Inside the include %{d} and a bare "ptr" mean ptr._spf.example.com, so the domain is spelled out.
    table = _with(table, "ptr._spf.example.com.", "v=spf1 -ptr:example.com +all")
    resolver = TableResolver(table)
    results = {
        ip: (await check_host(resolver, ip=ip, domain="example.com", sender="a@example.com")).result for ip in HOSTS
    }
    assert results == {
        "192.0.2.10": "pass",
        "192.0.2.11": "pass",
        "192.0.2.65": "pass",
        "192.0.2.66": "pass",
        "192.0.2.129": "pass",
        "192.0.2.130": "pass",
        "192.0.2.140": "fail",  # mail-c.example.org
        "10.0.0.4": "fail",  # outside 192.0.2.0/24
    }


# RFC 7208 §7.4: sender strong-bad@email.example.com from 192.0.2.3 or 2001:db8::cb01.
@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ],
)
async def test_section_7_4_macro_examples(macro: str, expanded: str) -> None:
    assert await _exists_query(macro, "192.0.2.3") == expanded.lower()


async def test_section_7_4_ipv6_macro_example() -> None:
    assert await _exists_query("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01") == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


async def _exists_query(macro: str, ip: str) -> str:
    """The name an `exists:` with this macro asks for."""
    resolver = TableResolver({"email.example.com.": {"TXT": [f"v=spf1 exists:{macro} -all"]}})
    outcome = await check_host(resolver, ip=ip, domain="email.example.com", sender="strong-bad@email.example.com")
    assert outcome.result is SpfResult.FAIL, outcome
    kind, name = resolver.queries[-1]
    assert kind == "A"  # RFC 7208 §5.7: exists always asks for A, even over IPv6
    return name.rstrip(".")


async def test_uppercase_macros_are_url_escaped_and_long_names_cut_from_the_left() -> None:
    assert await _exists_query("%{L}.x.%{d2}", "192.0.2.3") == "strong-bad.x.example.com"
    long_local = "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + "." + "d" * 60
    resolver = TableResolver({"example.com.": {"TXT": ["v=spf1 exists:%{l}.%{l}.example.com -all"]}})
    await check_host(resolver, ip="192.0.2.3", domain="example.com", sender=f"{long_local}@example.com")
    name = resolver.queries[-1][1].rstrip(".")
    assert len(name) <= 253 and name.endswith(".example.com") and name.startswith("b")


@pytest.mark.parametrize(
    ("record", "result"),
    [
        ("v=spf1 -all", "fail"),
        ("v=spf1 ~all", "softfail"),
        ("v=spf1 ?all", "neutral"),
        ("v=spf1", "neutral"),
        ("v=spf1 ip4:192.0.2.3", "pass"),
        ("v=spf1 ip4:192.0.2.0/33 -all", "permerror"),
        ("v=spf1 ip4:192.0.2 -all", "permerror"),
        ("v=spf1 ip6:192.0.2.3 -all", "permerror"),
        ("v=spf1 foo:bar -all", "permerror"),
        ("v=spf1 include -all", "permerror"),
        ("v=spf1 include:foo -all", "permerror"),  # RFC 7208 §7.1: the domain must end in a top label
        ("v=spf1 a:%{x}.example.com -all", "permerror"),
        ("v=spf1 a:%{d0}.example.com -all", "permerror"),
        ("v=spf1 exists:%{c}.example.com -all", "permerror"),  # c is only for explanations
        ("v=spf1 -all redirect=a.example redirect=b.example", "permerror"),
        ("v=spf1 +all moo=%{x}", "permerror"),  # unknown modifiers are ignored but must parse
        ("v=spf1 +all moo=cow", "pass"),
        ("v=spf1 ip4:10.0.0.0/8 allx", "permerror"),
        ("v=spf1 ip4:192.0.2.3 -all garbage%", "permerror"),  # a syntax error anywhere, even after the match
    ],
)
async def test_records(record: str, result: str) -> None:
    resolver = TableResolver({"example.com.": {"TXT": [record]}})
    assert (await check_host(resolver, ip="192.0.2.3", domain="example.com", sender="a@example.com")).result == result


async def test_ipv6_and_mapped_ipv4() -> None:
    resolver = TableResolver(
        {"example.com.": {"TXT": ["v=spf1 ip6:2001:db8::/32 a -all"], "A": ["192.0.2.3"], "AAAA": ["2001:db9::1"]}}
    )
    for ip, result in [("2001:db8::1", "pass"), ("2001:db9::1", "pass"), ("::ffff:192.0.2.3", "pass"), ("::1", "fail")]:
        assert (await check_host(resolver, ip=ip, domain="example.com", sender="a@example.com")).result == result


async def test_no_record_none_and_two_records_permerror() -> None:
    resolver = TableResolver(
        {
            "example.com.": {"TXT": ["google-site-verification=x"]},
            "two.example.": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
            "v2.example.": {"TXT": ["v=spf10 +all", "spf2.0/pra +all"]},
        }
    )
    for domain, result in [
        ("example.com", "none"),
        ("nowhere.example", "none"),
        ("two.example", "permerror"),
        ("v2.example", "none"),
        ("localhost", "none"),  # not a fully qualified domain (RFC 7208 §4.3)
        ("192.0.2.1", "none"),
    ]:
        outcome = await check_host(resolver, ip="192.0.2.3", domain=domain, sender=f"a@{domain}")
        assert outcome.result == result, domain


async def test_dns_failure_is_temperror() -> None:
    resolver = TableResolver(
        {"example.com.": {"TXT": ["v=spf1 a:broken.example -all"]}, "ok.example.": {"TXT": ["v=spf1 -all"]}},
        broken=["broken.example", "down.example"],
    )
    assert (await check_host(resolver, ip="192.0.2.3", domain="down.example", sender="a@down.example")).result == (
        "temperror"
    )
    assert (await check_host(resolver, ip="192.0.2.3", domain="example.com", sender="a@example.com")).result == (
        "temperror"
    )


async def test_include_maps_results() -> None:
    table: Table = {
        "example.com.": {"TXT": ["v=spf1 include:inc.example -all"]},
        "none.example.": {"TXT": ["v=spf1 include:nothing.example +all"]},
        "temp.example.": {"TXT": ["v=spf1 include:broken.example +all"]},
        "soft.example.": {"TXT": ["v=spf1 include:soft-inc.example ?all"]},
        "inc.example.": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "soft-inc.example.": {"TXT": ["v=spf1 ~all"]},
    }
    resolver = TableResolver(table, broken=["broken.example"])

    async def result(domain: str, ip: str = "192.0.2.3") -> str:
        return (await check_host(resolver, ip=ip, domain=domain, sender=f"a@{domain}")).result

    assert await result("example.com") == "pass"
    assert await result("example.com", "198.51.100.1") == "fail"  # the include's fail is "no match"
    assert await result("none.example") == "permerror"  # RFC 7208 §5.2: include of no record
    assert await result("temp.example") == "temperror"
    assert await result("soft.example") == "neutral"


async def test_redirect() -> None:
    table: Table = {
        "example.com.": {"TXT": ["v=spf1 ip4:198.51.100.1 redirect=_spf.example.net"]},
        "_spf.example.net.": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "loose.example.": {"TXT": ["v=spf1 redirect=nothing.example"]},
        "first.example.": {"TXT": ["v=spf1 +all redirect=_spf.example.net"]},
    }
    resolver = TableResolver(table)

    async def result(domain: str, ip: str) -> str:
        return (await check_host(resolver, ip=ip, domain=domain, sender=f"a@{domain}")).result

    assert await result("example.com", "192.0.2.3") == "pass"
    assert await result("example.com", "203.0.113.1") == "fail"
    assert await result("loose.example", "192.0.2.3") == "permerror"  # RFC 7208 §6.1
    assert await result("first.example", "203.0.113.1") == "pass"  # redirect only when nothing matched


async def test_ten_lookups_are_allowed_eleven_are_a_permerror() -> None:
    def chain(count: int) -> Table:
        table: dict[str, dict[str, list[str]]] = {}
        for n in range(count):
            table[f"d{n}.example."] = {"TXT": [f"v=spf1 include:d{n + 1}.example -all"]}
        table[f"d{count}.example."] = {"TXT": ["v=spf1 +all"]}
        return table

    ten = TableResolver(chain(10))
    assert (await check_host(ten, ip="192.0.2.3", domain="d0.example", sender="a@d0.example")).result == "pass"
    eleven = TableResolver(chain(11))
    outcome = await check_host(eleven, ip="192.0.2.3", domain="d0.example", sender="a@d0.example")
    assert outcome.result == "permerror"
    assert "too many DNS lookups" in outcome.reason


async def test_include_loop_ends_in_permerror() -> None:
    resolver = TableResolver({"loop.example.": {"TXT": ["v=spf1 include:loop.example -all"]}})
    outcome = await check_host(resolver, ip="192.0.2.3", domain="loop.example", sender="a@loop.example")
    assert outcome.result == "permerror"


async def test_two_void_lookups_are_allowed_three_are_a_permerror() -> None:
    resolver = TableResolver(
        {
            "two.example.": {"TXT": ["v=spf1 a:no1.example a:no2.example +all"]},
            "three.example.": {"TXT": ["v=spf1 a:no1.example a:no2.example exists:no3.example +all"]},
            "no1.example.": {},
        }
    )
    assert (await check_host(resolver, ip="192.0.2.3", domain="two.example", sender="a@two.example")).result == "pass"
    outcome = await check_host(resolver, ip="192.0.2.3", domain="three.example", sender="a@three.example")
    assert outcome.result == "permerror"
    assert "void" in outcome.reason


async def test_more_than_ten_mx_names_is_a_permerror() -> None:
    table: dict[str, dict[str, list[str]]] = {
        "many.example.": {"TXT": ["v=spf1 mx -all"], "MX": [f"{n} mx{n}.many.example." for n in range(11)]},
    }
    for n in range(11):
        table[f"mx{n}.many.example."] = {"A": [f"198.51.100.{n}"]}
    resolver = TableResolver(table)
    outcome = await check_host(resolver, ip="192.0.2.3", domain="many.example", sender="a@many.example")
    assert outcome.result == "permerror"


async def test_helo_identity_and_null_sender() -> None:
    resolver = TableResolver(
        {"mail.example.com.": {"TXT": ["v=spf1 a exists:%{l}.%{o}.x.example -all"], "A": ["192.0.2.3"]}}
    )
    outcome = await check_host(resolver, ip="192.0.2.3", domain="mail.example.com", sender="", helo="mail.example.com")
    assert outcome.result is SpfResult.PASS
    outcome = await check_host(resolver, ip="192.0.2.4", domain="mail.example.com", sender="")
    assert outcome.result is SpfResult.FAIL
    assert resolver.queries[-1] == ("A", "postmaster.mail.example.com.x.example.")  # RFC 7208 §4.3
