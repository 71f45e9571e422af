"""The auth check: its decisions over a table resolver, then the MX over real sockets with a real DNS
server publishing SPF, DKIM and DMARC records."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import dkim

from pochta.dns import DnsResolver
from pochta.filters.authcheck import AuthCheck, AuthSettings
from pochta.filters.pipeline import Action, Inbound
from pochta.mail.envelope import Envelope
from pochta.mailauth.dkim import Algorithm, SigningKey, generate, sign
from pochta.store.api import SpecialUse

from ..dnsserver import serving
from ..mailauth.table import Table, TableResolver, to_zone
from ..smtpd.harness import Mx, running_mx

ORIGIN = generate("origin.example", "s1", Algorithm.RSA)
LISTS = generate("lists.example", "arc", Algorithm.RSA)
TABLE: Table = {
    "origin.example.": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    ORIGIN.dns_name + ".": {"TXT": [ORIGIN.dns_record]},
    LISTS.dns_name + ".": {"TXT": [LISTS.dns_record]},
    "_dmarc.origin.example.": {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@origin.example"]},
    "evil.example.": {"TXT": ["v=spf1 +all"]},
    "quarantined.example.": {"TXT": ["v=spf1 -all"]},
    "_dmarc.quarantined.example.": {"TXT": ["v=DMARC1; p=quarantine"]},
    "lists.example.": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    "mail.helo.example.": {"TXT": ["v=spf1 a -all"], "A": ["127.0.0.1"]},
}


def message(from_address: str, *, subject: str = "lunch") -> bytes:
    return (
        f"From: <{from_address}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@origin.example>\r\n\r\nNoon?\r\n"
    ).encode()


def signed(from_address: str, key: SigningKey = ORIGIN) -> bytes:
    content = message(from_address)
    return sign(content, [key]) + content


def inbound(content: bytes, *, mail_from: str, ip: str = "127.0.0.1", helo: str = "mail.helo.example") -> Inbound:
    return Inbound(
        id="t1", content=content, envelope=Envelope(mail_from=mail_from), remote_ip=ip, helo=helo, is_tls=False
    )


async def run(
    content: bytes, *, mail_from: str, settings: Mapping[str, object] | None = None, **kwargs: str
) -> tuple[Action, str, dict[str, str], str]:
    check = AuthCheck(
        TableResolver(TABLE),
        AuthSettings(hostname="mx.example.test", **(settings or {})),  # type: ignore[arg-type]
        sample=lambda: 0.0,
    )
    verdict = await check.check(inbound(content, mail_from=mail_from, **kwargs), {})
    ((name, value),) = verdict.headers
    assert name == "Authentication-Results"
    reply = f"{verdict.reply.code} {verdict.reply.status} {verdict.reply.text}" if verdict.reply else ""
    return verdict.action, value, dict(verdict.facts), reply


async def test_everything_passes() -> None:
    action, header, facts, _ = await run(signed("joe@origin.example"), mail_from="joe@origin.example")
    assert action is Action.ACCEPT
    assert facts == {"spf": "pass", "dkim": "pass", "dmarc": "pass", "dmarc.policy": "reject", "arc": "none"}
    assert header.startswith("mx.example.test; spf=pass (127.0.0.1: ip4:127.0.0.1) smtp.mailfrom=joe@origin.example; ")
    assert "; dkim=pass header.d=origin.example header.s=s1 header.a=rsa-sha256 header.b=" in header
    assert header.endswith("; dmarc=pass (p=reject dis=none) header.from=origin.example; arc=none")


async def test_dkim_alone_or_spf_alone_is_enough_for_dmarc() -> None:
    action, _, facts, _ = await run(signed("joe@origin.example"), mail_from="bounce@evil.example", ip="192.0.2.9")
    assert (action, facts["spf"], facts["dkim"], facts["dmarc"]) == (Action.ACCEPT, "pass", "pass", "pass")
    action, _, facts, _ = await run(message("joe@origin.example"), mail_from="joe@origin.example")
    assert (action, facts["spf"], facts["dkim"], facts["dmarc"]) == (Action.ACCEPT, "pass", "none", "pass")


async def test_spoofed_from_under_p_reject_is_rejected() -> None:
    action, header, facts, reply = await run(message("ceo@origin.example"), mail_from="x@evil.example")
    assert action is Action.REJECT
    assert reply == ("550 5.7.1 DMARC policy of origin.example rejects this message: no aligned SPF or DKIM pass")
    assert (facts["spf"], facts["dmarc"], facts["dmarc.policy"]) == ("pass", "fail", "reject")
    assert "dmarc=fail (p=reject dis=reject) header.from=origin.example" in header


async def test_p_reject_goes_to_junk_when_the_operator_says_so() -> None:
    action, _, _, reply = await run(
        message("ceo@origin.example"), mail_from="x@evil.example", settings={"dmarc_reject": False}
    )
    assert (action, reply) == (Action.JUNK, "")


async def test_p_quarantine_is_junk() -> None:
    action, header, facts, _ = await run(message("a@quarantined.example"), mail_from="a@quarantined.example")
    assert action is Action.JUNK
    assert (facts["spf"], facts["dmarc"], facts["dmarc.policy"]) == ("fail", "fail", "quarantine")
    assert "spf=fail" in header


async def test_null_sender_checks_the_helo_name() -> None:
    action, header, facts, _ = await run(message("a@helo.example"), mail_from="")
    assert facts["spf"] == "pass"
    assert "smtp.helo=mail.helo.example" in header
    assert action is Action.ACCEPT  # helo.example publishes no DMARC policy
    assert facts["dmarc"] == "none"


def _through_list() -> bytes:
    """joe@origin.example's signed mail, rewritten by a mailing list that then ARC-seals it."""
    original = signed("joe@origin.example")
    rewritten = original.replace(b"Subject: lunch", b"Subject: [team] lunch") + b"-- \r\nteam list\r\n"
    rewritten = b"Authentication-Results: lists.example; dkim=pass header.d=origin.example\r\n" + rewritten
    arc_set = dkim.arc_sign(
        rewritten, LISTS.selector.encode(), LISTS.domain.encode(), LISTS.private_key.encode(), b"lists.example"
    )
    return b"".join(arc_set) + rewritten


async def test_a_trusted_arc_sealer_excuses_a_dmarc_failure() -> None:
    relayed = _through_list()
    action, header, facts, _ = await run(relayed, mail_from="bounce@lists.example", ip="192.0.2.9")
    assert (action, facts["dkim"], facts["dmarc"], facts["arc"]) == (Action.REJECT, "fail", "fail", "pass")
    action, header, facts, _ = await run(
        relayed,
        mail_from="bounce@lists.example",
        ip="192.0.2.9",
        settings={"trusted_arc_sealers": frozenset({"lists.example"})},
    )
    assert action is Action.ACCEPT
    assert "overridden: ARC sealed by trusted lists.example" in header
    assert "arc=pass (i=1 sealer=lists.example)" in header


async def test_dns_failures_are_temperror_and_never_reject() -> None:
    check = AuthCheck(
        TableResolver(TABLE, broken=["origin.example", ORIGIN.dns_name, "_dmarc.origin.example"]),
        AuthSettings(hostname="mx.example.test"),
    )
    verdict = await check.check(inbound(message("ceo@origin.example"), mail_from="x@origin.example"), {})
    assert verdict.action is Action.ACCEPT
    assert (verdict.facts["spf"], verdict.facts["dmarc"]) == ("temperror", "temperror")


async def test_each_name_is_asked_once_per_message() -> None:
    resolver = TableResolver(TABLE)
    check = AuthCheck(resolver, AuthSettings(hostname="mx.example.test"))
    content = sign(message("joe@origin.example"), [ORIGIN, ORIGIN]) + message("joe@origin.example")
    await check.check(inbound(content, mail_from="joe@origin.example"), {})
    assert len(resolver.queries) == len(set(resolver.queries))
    assert ("TXT", ORIGIN.dns_name + ".") in resolver.queries


# --- the MX over real sockets -------------------------------------------------------------------------


async def send(mx: Mx, *, mail_from: str, content: bytes, helo: str = "mail.helo.example") -> str:
    client = await mx.connect()
    await client.reply()
    await client.command(f"EHLO {helo}")
    await client.command(f"MAIL FROM:<{mail_from}>")
    assert (await client.command("RCPT TO:<alice@example.test>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(content + b".\r\n")
    return (await client.reply())[0]


def _auth_results(stored: bytes) -> str:
    headers = stored.split(b"\r\n\r\n", 1)[0].decode()
    fields = [line for line in headers.split("\r\n") if line.startswith("Authentication-Results:")]
    assert len(fields) == 1, fields
    return fields[0]


async def test_mx_with_a_real_dns_server(tmp_path: Path) -> None:
    async with (
        serving(to_zone(TABLE)) as nameserver,
        running_mx(tmp_path, auth={"enabled": True}, dns={"nameservers": [nameserver], "timeout": 2.0}) as mx,
    ):
        await mx.add_user("alice@example.test")

        # Signed with the key in DNS, sent from an address the SPF record allows: all pass.
        forged = b"Authentication-Results: mx.example.test; dkim=pass header.d=bank.example\r\n"
        content = signed("joe@origin.example")  # once: the signature's t= is the current second
        reply = await send(mx, mail_from="joe@origin.example", content=forged + content)
        assert reply.startswith("250 ")
        (stored,) = await mx.inbox_bytes("alice@example.test")
        header = _auth_results(stored)  # the forged field claiming our name is gone (RFC 8601 §5)
        assert header.startswith("Authentication-Results: mx.example.test; spf=pass")
        assert "dkim=pass header.d=origin.example" in header and "dmarc=pass" in header
        assert b"bank.example" not in stored
        assert stored.endswith(content)

        # A spoofed From under p=reject: refused, nothing stored.
        reply = await send(mx, mail_from="x@evil.example", content=message("ceo@origin.example"))
        assert reply.startswith("550 5.7.1 DMARC policy of origin.example rejects")
        assert len(await mx.inbox("alice@example.test")) == 1

        # p=quarantine: delivered to Junk.
        reply = await send(mx, mail_from="a@quarantined.example", content=message("a@quarantined.example"))
        assert reply.startswith("250 ")
        assert len(await mx.inbox("alice@example.test")) == 1
        account = await mx.store.get_account("alice@example.test")
        assert account is not None
        (junk,) = [m for m in await mx.store.list_mailboxes(account.id) if m.special_use is SpecialUse.JUNK]
        (copy,) = await mx.store.messages(junk.id, with_structure=True)
        assert "dmarc=fail (p=quarantine dis=quarantine)" in _auth_results(await mx.blobs.read(copy.blob_id))


async def test_mx_with_dns_down_accepts_with_temperror(tmp_path: Path) -> None:
    async with serving({}) as nameserver:
        pass  # the server is gone: its port is closed
    async with running_mx(tmp_path, auth={"enabled": True}, dns={"nameservers": [nameserver], "timeout": 0.5}) as mx:
        await mx.add_user("alice@example.test")
        reply = await send(mx, mail_from="x@evil.example", content=signed("ceo@origin.example"))
        assert reply.startswith("250 ")
        (stored,) = await mx.inbox_bytes("alice@example.test")
        header = _auth_results(stored)
        assert "spf=temperror" in header and "dkim=temperror" in header and "dmarc=temperror" in header


async def test_mx_without_auth_adds_nothing(tmp_path: Path) -> None:
    async with running_mx(tmp_path, auth={"enabled": False}) as mx:
        await mx.add_user("alice@example.test")
        content = message("ceo@origin.example")
        assert (await send(mx, mail_from="x@evil.example", content=content)).startswith("250 ")
        (stored,) = await mx.inbox_bytes("alice@example.test")
        assert b"Authentication-Results" not in stored


async def test_mx_checks_a_large_message_spilled_to_disk(tmp_path: Path) -> None:
    body = b"".join(b"line %06d of a long report\r\n" % n for n in range(12_000))  # ~330 KB: mapped, not in memory
    content = message("joe@origin.example").replace(b"Noon?\r\n", body)
    content = sign(content, [ORIGIN]) + content
    async with (
        serving(to_zone(TABLE)) as nameserver,
        running_mx(tmp_path, auth={"enabled": True}, dns={"nameservers": [nameserver], "timeout": 2.0}) as mx,
    ):
        await mx.add_user("alice@example.test")
        assert (await send(mx, mail_from="joe@origin.example", content=content)).startswith("250 ")
        (stored,) = await mx.inbox_bytes("alice@example.test")
        assert "dkim=pass header.d=origin.example" in _auth_results(stored)
        assert stored.endswith(content)


async def test_a_dns_server_that_never_answers_costs_the_time_budget_and_gives_temperror() -> None:
    async with serving({}) as nameserver:  # "silent.test." is never answered (tests/dnsserver.py)
        check = AuthCheck(
            DnsResolver(nameservers=[nameserver], timeout=30), AuthSettings(hostname="mx.example.test", time_budget=0.3)
        )
        started = time.monotonic()
        verdict = await check.check(inbound(message("a@silent.test"), mail_from="a@silent.test"), {})
        assert time.monotonic() - started < 5
    assert verdict.action is Action.ACCEPT
    assert verdict.facts["spf"] == "temperror"
    assert "spf=temperror (127.0.0.1: DNS too slow)" in verdict.headers[0][1]


async def test_an_international_from_domain_is_shown_as_its_a_label() -> None:
    table = {**TABLE, "_dmarc.xn--bcher-kva.example.": {"TXT": ["v=DMARC1; p=reject"]}}
    check = AuthCheck(TableResolver(table), AuthSettings(hostname="mx.example.test"))
    content = "From: <a@bücher.example>\r\nSubject: x\r\n\r\nhi\r\n".encode()
    verdict = await check.check(inbound(content, mail_from="x@evil.example"), {})
    assert verdict.reply is not None
    assert (
        verdict.reply.text == "DMARC policy of xn--bcher-kva.example rejects this message: no aligned SPF or DKIM pass"
    )
