"""Submission on 587 (STARTTLS, then AUTH) and 465 (implicit TLS): transcripts over real sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pochta.mail.envelope import Envelope
from pochta.proto import sasl

from .harness import PASSWORD, Client, Mx, running_mx

LISTEN = {"smtp": [], "submission": ["127.0.0.1:0"], "submissions": ["127.0.0.1:0"]}


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path, listen=LISTEN) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        await server.store.add_alias("sales@example.test", ["alice@example.test"])
        yield server


def plain(user: str, password: str = PASSWORD) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


async def _login(client: Client, user: str = "alice@example.test") -> None:
    assert (await client.reply())[0].startswith("220")
    ehlo = await client.command("EHLO laptop")
    if "250-STARTTLS" in ehlo or "250 STARTTLS" in ehlo:
        assert not any("AUTH" in line for line in ehlo)  # RFC 8314 §3: no AUTH before TLS
        assert await client.command("MAIL FROM:<alice@example.test>") == ["530 5.7.0 authentication required"]
        await client.command("STARTTLS")
        await client.starttls()
        ehlo = await client.command("EHLO laptop")
    assert ehlo[-1] == "250 AUTH SCRAM-SHA-256 PLAIN LOGIN" or "250-AUTH SCRAM-SHA-256 PLAIN LOGIN" in ehlo
    assert await client.command(f"AUTH PLAIN {plain(user)}") == ["235 2.7.0 authentication succeeded"]


async def _send(client: Client, sender: str, recipients: list[str], content: bytes) -> list[str]:
    assert (await client.command(f"MAIL FROM:<{sender}>"))[0].startswith("250"), sender
    for recipient in recipients:
        assert (await client.command(f"RCPT TO:<{recipient}>"))[0].startswith("250"), recipient
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(content + b".\r\n")
    return await client.reply()


async def test_starttls_auth_local_and_remote_recipients(mx: Mx) -> None:
    client = await mx.connect("submission")
    await _login(client)
    content = (
        b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nBcc: secret@remote.test\r\n"
        b"Subject: hi\r\n\r\nhello\r\n"
    )
    reply = await _send(
        client,
        "alice@example.test",
        ["bob@example.test", "x@remote.test", "secret@remote.test", "y@other.test"],
        content,
    )
    assert reply == ["250 2.0.0 OK id=id0001"]
    (stored,) = await mx.inbox_bytes("bob@example.test")
    assert b"Bcc:" not in stored and b"secret@remote.test" not in stored  # RFC 6409 §8
    assert b"\r\nMessage-ID: <" in stored and b"\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n" in stored
    assert b"with ESMTPSA id id0001" in stored
    assert b"Subject: hi\r\n" in stored and stored.endswith(b"\r\n\r\nhello\r\n")
    assert not stored.startswith(b"Return-Path:")  # outgoing mail: the final MTA adds it
    entries = await mx.store.queue_entries()
    assert sorted((e.domain, tuple(r.address for r in e.recipients)) for e in entries) == [
        ("other.test", ("y@other.test",)),
        ("remote.test", ("secret@remote.test", "x@remote.test")),
    ]
    account = await mx.store.get_account("alice@example.test")
    assert account is not None and all(e.account_id == account.id for e in entries)
    assert Envelope.loads(entries[0].envelope).mail_from == "alice@example.test"
    assert await mx.blobs.read(entries[0].blob_id) == stored  # the same octets go out


async def test_implicit_tls_and_every_sasl_mechanism(mx: Mx) -> None:
    client = await mx.connect("submissions", tls=True)
    assert (await client.reply())[0].startswith("220")
    ehlo = await client.command("EHLO laptop")
    assert "250-STARTTLS" not in ehlo and ehlo[-1].startswith("250")
    assert await client.command("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
    assert await client.command(base64.b64encode(b"alice@example.test").decode()) == ["334 UGFzc3dvcmQ6"]
    assert await client.command(base64.b64encode(PASSWORD.encode()).decode()) == ["235 2.7.0 authentication succeeded"]
    scram_client = await mx.connect("submissions", tls=True)
    await scram_client.reply()
    await scram_client.command("EHLO laptop")
    nonce = "rOprNGfwEbeRWgbNEkqO"
    first = f"n,,n=alice@example.test,r={nonce}"
    server_first = await scram_client.command(f"AUTH SCRAM-SHA-256 {base64.b64encode(first.encode()).decode()}")
    assert server_first[0].startswith("334 ")
    challenge = base64.b64decode(server_first[0][4:]).decode()
    attrs = dict(part.split("=", 1) for part in challenge.split(","))
    keys = sasl.derive_scram_credentials(PASSWORD, salt=base64.b64decode(attrs["s"]), iterations=int(attrs["i"]))
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"n=alice@example.test,r={nonce},{challenge},{without_proof}".encode()
    signature = hmac.digest(keys.stored_key, auth_message, "sha256")
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    final = await scram_client.command(base64.b64encode(f"{without_proof},p={proof}".encode()).decode())
    assert final[0].startswith("334 ") and base64.b64decode(final[0][4:]).startswith(b"v=")
    assert await scram_client.command("") == ["235 2.7.0 authentication succeeded"]


async def test_wrong_password_and_unknown_mechanism(mx: Mx) -> None:
    client = await mx.connect("submissions", tls=True)
    await client.reply()
    await client.command("EHLO laptop")
    assert await client.command(f"AUTH PLAIN {plain('alice@example.test', 'wrong password')}") == [
        "535 5.7.8 authentication credentials invalid"
    ]
    assert await client.command(f"AUTH PLAIN {plain('nobody@example.test')}") == [
        "535 5.7.8 authentication credentials invalid"
    ]
    assert (await client.command("AUTH CRAM-MD5"))[0].startswith("504")
    assert await client.command("MAIL FROM:<alice@example.test>") == ["530 5.7.0 authentication required"]


async def test_sender_must_be_owned(mx: Mx) -> None:
    client = await mx.connect("submissions", tls=True)
    await _login(client)
    assert await client.command("MAIL FROM:<bob@example.test>") == [
        "553 5.7.1 <bob@example.test>: not an address of the authenticated user"
    ]
    assert await client.command("MAIL FROM:<ceo@remote.test>") == [
        "553 5.7.1 <ceo@remote.test>: not an address of the authenticated user"
    ]
    for own in ("alice@example.test", "alice+news@example.test", "sales@example.test"):
        assert (await client.command(f"MAIL FROM:<{own}>"))[0].startswith("250"), own
        await client.command("RSET")
    reply = await _send(
        client, "alice@example.test", ["bob@example.test"], b"From: bob@example.test\r\nSubject: forged\r\n\r\nx\r\n"
    )
    assert reply == ["553 5.7.1 From: not an address of the authenticated user"]
    assert await mx.inbox("bob@example.test") == []
    reply = await _send(
        client,
        "alice@example.test",
        ["bob@example.test"],
        b"From: Sales <sales@example.test>\r\nSubject: ok\r\n\r\nx\r\n",
    )
    assert reply[0].startswith("250")


async def test_outgoing_mail_is_dkim_signed_for_the_from_domain(mx: Mx) -> None:
    import dkim

    from pochta.mailauth.dkim import Algorithm, generate
    from pochta.store.api import DkimKey

    from .harness import CLOCK

    records = {}
    for selector, algorithm in (("r1", Algorithm.RSA), ("e1", Algorithm.ED25519)):
        key = generate("example.test", selector, algorithm)
        records[f"{key.dns_name}.".encode()] = key.dns_record.encode()
        await mx.store.add_dkim_key(
            DkimKey(
                domain=key.domain,
                selector=key.selector,
                algorithm=key.algorithm.value,
                private_key=key.private_key,
                public_key=key.public_key,
                created=CLOCK,
            )
        )
    client = await mx.connect("submissions", tls=True)
    await _login(client)
    content = b"From: alice@example.test\r\nTo: x@remote.test\r\nSubject: signed\r\n\r\nsigned body\r\n"
    assert (await _send(client, "alice@example.test", ["x@remote.test"], content))[0].startswith("250")
    (entry,) = await mx.store.queue_entries()
    outgoing = await mx.blobs.read(entry.blob_id)
    assert outgoing.count(b"DKIM-Signature:") == 2
    assert b"a=rsa-sha256" in outgoing and b"a=ed25519-sha256" in outgoing

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    verifier = dkim.DKIM(outgoing)
    assert verifier.verify(idx=0, dnsfunc=dns) and verifier.verify(idx=1, dnsfunc=dns)
    with pytest.raises(dkim.ValidationError, match="body hash mismatch"):
        dkim.DKIM(outgoing.replace(b"signed body", b"changed body")).verify(dnsfunc=dns)
