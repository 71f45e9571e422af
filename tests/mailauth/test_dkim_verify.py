"""DKIM verification (RFC 6376, RFC 8463) against a table resolver: RFC 8463's published test vector,
messages signed with our own keys, and every way a signature can go wrong."""

from __future__ import annotations

import pytest

from pochta.mailauth.dkim import Algorithm, DkimResult, generate, sign, verify

from .table import TableResolver

# RFC 8463 Appendix A.2 (DNS records) and A.3 (the signed message), as published.
RFC8463_KEYS = {
    "brisbane._domainkey.football.example.com.": {
        "TXT": ["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]
    },
    "test._domainkey.football.example.com.": {
        "TXT": [
            "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
            "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
            "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
            "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
        ]
    },
}
RFC8463_MESSAGE = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: lunch\r\n"
    b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Noon at the usual place?\r\n"
)


async def test_rfc8463_test_vector_both_signatures_pass() -> None:
    outcomes = await verify(RFC8463_MESSAGE, TableResolver(RFC8463_KEYS))
    assert [(o.result, o.algorithm, o.selector, o.domain) for o in outcomes] == [
        ("pass", "ed25519-sha256", "brisbane", "football.example.com"),
        ("pass", "rsa-sha256", "test", "football.example.com"),
    ]
    assert outcomes[0].identity == "@football.example.com"
    assert outcomes[0].signature == "/gCrinpcQOoI"


async def test_rfc8463_test_vector_with_a_changed_body_fails() -> None:
    tampered = RFC8463_MESSAGE.replace(b"We lost the game", b"We won the game")
    outcomes = await verify(tampered, TableResolver(RFC8463_KEYS))
    assert [o.result for o in outcomes] == ["fail", "fail"]
    assert "body hash" in outcomes[0].reason


async def test_rfc8463_test_vector_with_a_changed_subject_fails() -> None:
    tampered = RFC8463_MESSAGE.replace(b"Is dinner ready?", b"Is lunch ready?")
    assert [o.result for o in await verify(tampered, TableResolver(RFC8463_KEYS))] == ["fail", "fail"]


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_our_signatures_verify(algorithm: Algorithm) -> None:
    key = generate("example.org", "sel1", algorithm)
    signed = sign(MESSAGE, [key]) + MESSAGE
    resolver = TableResolver({key.dns_name + ".": {"TXT": [key.dns_record]}})
    [outcome] = await verify(signed, resolver)
    assert outcome.result is DkimResult.PASS, outcome.reason
    assert (outcome.domain, outcome.selector, outcome.algorithm) == ("example.org", "sel1", algorithm.value)
    # Relaxed canonicalization survives re-folding and trailing whitespace; a new header is not covered.
    relaxed = signed.replace(b"Subject: lunch", b"Subject:   lunch  ").replace(
        b"\r\n\r\n", b"\r\nX-Added: 1\r\n\r\n", 1
    )
    assert [o.result for o in await verify(relaxed, resolver)] == ["pass"]
    # A large message is hashed in a thread, with the same answer.
    large = sign(MESSAGE + b"x" * 100 + b"\r\n" * 5000, [key]) + MESSAGE + b"x" * 100 + b"\r\n" * 5000
    assert [o.result for o in await verify(large, resolver)] == ["pass"]


async def test_key_problems() -> None:
    key = generate("example.org", "sel1", Algorithm.ED25519)
    other = generate("example.org", "sel1", Algorithm.ED25519)
    signed = sign(MESSAGE, [key]) + MESSAGE

    async def result(table: dict[str, dict[str, list[str]]], *, broken: tuple[str, ...] = ()) -> tuple[str, str]:
        [outcome] = await verify(signed, TableResolver(table, broken=broken))
        return outcome.result, outcome.reason

    name = key.dns_name + "."
    assert (await result({}))[0] == "permerror"  # no key: RFC 6376 §6.1.2
    assert await result({name: {"TXT": ["v=DKIM1; k=ed25519; p="]}}) == ("permerror", "key revoked")
    assert (await result({name: {"TXT": [other.dns_record]}}))[0] == "fail"  # a different key
    assert (await result({name: {"TXT": ["v=DKIM1; k=ed25519; p=bm90IGEga2V5"]}}))[0] == "permerror"
    assert (await result({name: {"TXT": ["v=DKIM1; k=dsa; p=AAAA"]}}))[0] == "permerror"
    assert (await result({}, broken=(key.dns_name,)))[0] == "temperror"  # DNS trouble is never a fail


async def test_1024_bit_rsa_keys_are_still_accepted() -> None:
    rsa_1024 = RFC8463_KEYS["test._domainkey.football.example.com."]  # 1024 bits is the floor: accepted
    [_, outcome] = await verify(RFC8463_MESSAGE, TableResolver({"test._domainkey.football.example.com.": rsa_1024}))
    assert outcome.result is DkimResult.PASS


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel1; h=from; bh=AAAA\r\n", "missing b"),
        (b"DKIM-Signature: v=2; a=rsa-sha256; d=example.org; s=sel1; h=from; bh=AA; b=AA\r\n", "unknown version"),
        (b"DKIM-Signature: v=1; a=rsa-sha1; d=example.org; s=sel1; h=from; bh=AA; b=AA\r\n", "algorithm rsa-sha1"),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example..org; s=sel1; h=from; bh=AA; b=AA\r\n", "bad d= or s="),
        (b"DKIM-Signature: garbage\r\n", "bad tag list"),
    ],
)
async def test_malformed_signatures_are_permerrors_without_dns(signature: bytes, reason: str) -> None:
    resolver = TableResolver({})
    [outcome] = await verify(signature + MESSAGE, resolver)
    assert outcome.result is DkimResult.PERMERROR
    assert reason in outcome.reason
    assert resolver.queries == []


async def test_unsigned_message_and_the_signature_limit() -> None:
    assert await verify(MESSAGE, TableResolver({})) == []
    key = generate("example.org", "sel1", Algorithm.ED25519)
    signed = sign(MESSAGE, [key] * 12) + MESSAGE
    outcomes = await verify(signed, TableResolver({key.dns_name + ".": {"TXT": [key.dns_record]}}))
    assert [o.result for o in outcomes] == ["pass"] * 10
