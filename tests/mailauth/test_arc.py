"""ARC (RFC 8617) against a table resolver: chains sealed with dkimpy, then tampered with."""

from __future__ import annotations

import dkim

from pochta.mailauth.arc import ArcResult, verify
from pochta.mailauth.dkim import Algorithm, SigningKey, generate, sign

from .table import Table, TableResolver

MESSAGE = (
    b"From: Alice <alice@origin.example>\r\n"
    b"To: list@lists.example\r\n"
    b"Subject: meeting\r\n"
    b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@origin.example>\r\n"
    b"\r\n"
    b"Tuesday at ten.\r\n"
)


def seal(message: bytes, key: SigningKey, *, results: str) -> bytes:
    """What an ARC sealer does: record its Authentication-Results, then add the next ARC set."""
    message = f"Authentication-Results: {key.domain}; {results}\r\n".encode() + message
    arc_set = dkim.arc_sign(
        message, key.selector.encode(), key.domain.encode(), key.private_key.encode(), key.domain.encode()
    )
    return b"".join(arc_set) + message


def keys_table(*keys: SigningKey) -> Table:
    return {key.dns_name + ".": {"TXT": [key.dns_record]} for key in keys}


def _list_chain() -> tuple[bytes, SigningKey, SigningKey, SigningKey]:
    origin = generate("origin.example", "s1", Algorithm.RSA)
    lists = generate("lists.example", "arc", Algorithm.RSA)
    forwarder = generate("fwd.example", "arc", Algorithm.RSA)
    signed = sign(MESSAGE, [origin]) + MESSAGE
    # The list checks the original, rewrites the subject and adds a footer, then seals.
    rewritten = signed.replace(b"Subject: meeting", b"Subject: [team] meeting") + b"-- \r\nteam list\r\n"
    once = seal(rewritten, lists, results="dkim=pass header.d=origin.example; spf=pass smtp.mailfrom=origin.example")
    return once, origin, lists, forwarder


async def test_unsealed_message_is_none() -> None:
    assert (await verify(MESSAGE, TableResolver({}))).result is ArcResult.NONE


async def test_one_hop_chain_passes() -> None:
    once, origin, lists, _ = _list_chain()
    outcome = await verify(once, TableResolver(keys_table(origin, lists)))
    assert (outcome.result, outcome.instance, outcome.sealer) == (ArcResult.PASS, 1, "lists.example")


async def test_two_hop_chain_passes_and_names_the_newest_sealer() -> None:
    once, origin, lists, forwarder = _list_chain()
    twice = seal(once, forwarder, results="arc=pass; dkim=fail header.d=origin.example")
    outcome = await verify(twice, TableResolver(keys_table(origin, lists, forwarder)))
    assert (outcome.result, outcome.instance, outcome.sealer) == (ArcResult.PASS, 2, "fwd.example")


async def test_changed_body_after_sealing_fails() -> None:
    once, origin, lists, _ = _list_chain()
    outcome = await verify(once.replace(b"Tuesday", b"Friday"), TableResolver(keys_table(origin, lists)))
    assert outcome.result is ArcResult.FAIL


async def test_changed_seal_fails() -> None:
    once, origin, lists, forwarder = _list_chain()
    twice = seal(once, forwarder, results="arc=pass")
    # Change the older instance's Authentication-Results: the newest seal covers every older set.
    tampered = twice.replace(b"spf=pass smtp.mailfrom=origin.example", b"spf=pass smtp.mailfrom=evil.example")
    assert tampered != twice
    outcome = await verify(tampered, TableResolver(keys_table(origin, lists, forwarder)))
    assert outcome.result is ArcResult.FAIL


async def test_wrong_or_missing_key_fails_and_dns_trouble_is_temperror() -> None:
    once, _, lists, _ = _list_chain()
    impostor = generate("lists.example", "arc", Algorithm.RSA)
    assert (await verify(once, TableResolver(keys_table(impostor)))).result is ArcResult.FAIL
    assert (await verify(once, TableResolver({}))).result is ArcResult.FAIL
    broken = TableResolver({}, broken=[lists.dns_name])
    assert (await verify(once, broken)).result is ArcResult.TEMPERROR


async def test_a_chain_whose_sealer_said_fail_is_a_fail() -> None:
    once, origin, lists, forwarder = _list_chain()
    twice = seal(once, forwarder, results="arc=fail")
    outcome = await verify(twice, TableResolver(keys_table(origin, lists, forwarder)))
    assert outcome.result is ArcResult.FAIL
