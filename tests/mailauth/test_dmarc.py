"""DMARC (RFC 7489) against a table resolver: record parsing, policy discovery with the organizational
domain, strict and relaxed alignment, p/sp/pct, several From addresses."""

from __future__ import annotations

import pytest

from pochta.mailauth.dmarc import (
    DmarcResult,
    Identifier,
    Policy,
    Record,
    check,
    evaluate,
    from_domains,
    is_aligned,
    organizational_domain,
    parse_record,
)

from .table import Table, TableResolver

TABLE: Table = {
    "_dmarc.example.com.": {"TXT": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"]},
    "_dmarc.strict.example.": {"TXT": ["v=DMARC1; p=reject; adkim=s; aspf=s"]},
    "_dmarc.half.example.": {"TXT": ["v=DMARC1; p=reject; pct=50"]},
    "_dmarc.quarter.example.": {"TXT": ["v=DMARC1; p=quarantine; pct=25"]},
    "_dmarc.monitor.example.": {"TXT": ["v=DMARC1; p=none"]},
    "_dmarc.two.example.": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]},
    "_dmarc.bad.example.": {"TXT": ["v=DMARC1; p=bogus"]},
    "_dmarc.badrua.example.": {"TXT": ["v=DMARC1; p=bogus; rua=mailto:r@badrua.example"]},
    "_dmarc.example.co.uk.": {"TXT": ["v=DMARC1; p=reject"]},
}


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("v=DMARC1; p=none", Record(policy=Policy.NONE)),
        ("v=DMARC1;p=reject;sp=none;pct=20", Record(policy=Policy.REJECT, subdomain_policy=Policy.NONE, percent=20)),
        ("v=DMARC1; p=quarantine; adkim=s; aspf=r;", Record(policy=Policy.QUARANTINE, strict_dkim=True)),
        ("v=DMARC1; p=Reject; pct=500", Record(policy=Policy.REJECT)),
        ("v=DMARC1; p=reject; pct=x", Record(policy=Policy.REJECT)),
        ("v=DMARC1; rua=mailto:x@example.com", Record(policy=Policy.NONE)),  # §6.6.3: no p= but a rua
    ],
)
def test_parse_record(text: str, record: Record) -> None:
    assert parse_record(text) == record


@pytest.mark.parametrize("text", ["v=DMARC1", "p=reject; v=DMARC1", "v=DMARC1; p=maybe", "v=DMARC1; p=reject; sp=x"])
def test_records_without_a_usable_policy(text: str) -> None:
    with pytest.raises(Exception, match=r"DMARC1|p="):
        parse_record(text)


def test_organizational_domain_uses_the_public_suffix_list() -> None:
    assert organizational_domain("mail.example.com") == "example.com"
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("example.com.") == "example.com"
    assert organizational_domain("com") == "com"
    assert is_aligned("mail.example.com", "example.com", strict=False)
    assert not is_aligned("mail.example.com", "example.com", strict=True)
    assert not is_aligned("example.co.uk", "other.co.uk", strict=False)  # a public suffix is no organization
    assert is_aligned("Example.COM", "example.com", strict=True)


async def _result(
    from_domain: str, *, spf: str = "", dkim: tuple[str, ...] = (), sample: float = 0.0
) -> tuple[str, str, str]:
    outcome = await evaluate(
        TableResolver(TABLE),
        from_domain=from_domain,
        spf=Identifier(domain=spf, is_pass=True) if spf else None,
        dkim=[Identifier(domain=domain, is_pass=True) for domain in dkim],
        sample=lambda: sample,
    )
    return outcome.result, outcome.policy, outcome.disposition


async def test_alignment_relaxed_and_strict() -> None:
    assert await _result("example.com", dkim=("example.com",)) == ("pass", "reject", "none")
    assert await _result("example.com", dkim=("mail.example.com",)) == ("pass", "reject", "none")
    assert await _result("example.com", spf="bounces.example.com") == ("pass", "reject", "none")
    assert await _result("example.com", dkim=("example.net",), spf="example.org") == ("fail", "reject", "reject")
    assert await _result("strict.example", dkim=("mail.strict.example",)) == ("fail", "reject", "reject")
    assert await _result("strict.example", spf="mail.strict.example") == ("fail", "reject", "reject")
    assert await _result("strict.example", dkim=("strict.example",)) == ("pass", "reject", "none")


async def test_failing_identifiers_do_not_align() -> None:
    outcome = await evaluate(
        TableResolver(TABLE),
        from_domain="example.com",
        spf=Identifier(domain="example.com", is_pass=False),
        dkim=[Identifier(domain="example.com", is_pass=False)],
    )
    assert outcome.result is DmarcResult.FAIL


async def test_subdomain_policy_from_the_organizational_domain() -> None:
    assert await _result("news.example.com") == ("fail", "quarantine", "quarantine")  # sp= applies
    assert await _result("deep.mail.example.co.uk") == ("fail", "reject", "reject")  # no sp=: p= applies
    assert await _result("news.example.com", dkim=("example.com",)) == ("pass", "quarantine", "none")


async def test_pct_samples_and_softens_the_rest() -> None:
    assert await _result("half.example", sample=0.49) == ("fail", "reject", "reject")
    assert await _result("half.example", sample=0.5) == ("fail", "reject", "quarantine")  # RFC 7489 §6.6.4
    assert await _result("quarter.example", sample=0.9) == ("fail", "quarantine", "none")
    assert await _result("monitor.example") == ("fail", "none", "none")


async def test_no_usable_record_is_none() -> None:
    assert (await _result("nowhere.example"))[0] == "none"
    assert (await _result("two.example"))[0] == "none"  # two records: no policy (§6.6.3)
    assert (await _result("bad.example"))[0] == "none"
    assert await _result("badrua.example") == ("fail", "none", "none")  # acts as p=none


async def test_dns_failure_is_temperror() -> None:
    outcome = await evaluate(
        TableResolver(TABLE, broken=["_dmarc.example.com"]), from_domain="example.com", spf=None, dkim=[]
    )
    assert outcome.result is DmarcResult.TEMPERROR
    assert outcome.disposition is Policy.NONE


def test_from_domains() -> None:
    block = b"From: Joe <joe@Example.COM>, =?utf-8?q?Ann?= <ann@other.example>\r\nFrom: x@example.com\r\n"
    assert from_domains(block) == ["example.com", "other.example"]
    assert from_domains(b"Subject: no from\r\n") == []
    assert from_domains(b"From: undisclosed\r\n") == []
    assert from_domains("From: <a@Bücher.example>\r\n".encode()) == ["xn--bcher-kva.example"]  # RFC 6532


async def test_the_worst_of_several_from_domains_counts() -> None:
    resolver = TableResolver(TABLE)
    passing = Identifier(domain="monitor.example", is_pass=True)
    block = b"From: a@monitor.example, b@example.com\r\n"
    outcome = await check(resolver, header_block=block, spf=None, dkim=[passing])
    assert (outcome.result, outcome.from_domain, outcome.disposition) == ("fail", "example.com", "reject")
    outcome = await check(resolver, header_block=b"From: a@monitor.example\r\n", spf=None, dkim=[passing])
    assert outcome.result is DmarcResult.PASS
    assert (await check(resolver, header_block=b"To: x@y.example\r\n", spf=None, dkim=[])).result == "permerror"
    invalid = await check(resolver, header_block=b"From: a@exa_mple..com\r\n", spf=None, dkim=[])
    assert (invalid.result, invalid.reason) == ("permerror", "From domain is not valid")
