"""SMTP smuggling, STARTTLS command injection and the open-relay matrix, against the running MX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pochta.store.api import INBOX

from .harness import Client, Mx, running_mx

# Every ending of the SMTP smuggling research (SEC Consult, 2023) and its follow-ups that some server
# took for <CRLF>.<CRLF>; none may end the message here.
SMUGGLING_ENDINGS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r.\n",
    b"\r\n.\r\r\n",
]
NUL_ENDINGS = [b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"]  # no bare line ending: just content
SMUGGLED = (
    b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nPay now.\r\n"
)


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        yield server


async def _all_mail(mx: Mx) -> int:
    total = 0
    for account in await mx.store.list_accounts():
        for mailbox in await mx.store.list_mailboxes(account.id):
            total += mailbox.messages
    return total


async def _start_transaction(client: Client, rcpt: str = "alice@example.test") -> None:
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO attacker.example")
    assert (await client.command("MAIL FROM:<mallory@remote.test>"))[0].startswith("250")
    assert (await client.command(f"RCPT TO:<{rcpt}>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")


@pytest.mark.parametrize("ending", SMUGGLING_ENDINGS + NUL_ENDINGS, ids=repr)
async def test_no_smuggling_ending_ends_the_message(mx: Mx, ending: bytes) -> None:
    client = await mx.connect()
    await _start_transaction(client)
    await client.send(b"Subject: first\r\n\r\nHello" + ending + SMUGGLED + b".\r\n")
    # exactly one reply for the whole thing: nothing after the fake ending ran as a command
    reply = await client.reply()
    if ending in SMUGGLING_ENDINGS:
        assert reply == ["550 5.6.2 bare CR or LF in message content (RFC 5321 §2.3.8)"]
        assert await _all_mail(mx) == 0
    else:  # NUL variants hold no bare line ending: one message, with the "smuggled" text as content
        assert reply[0].startswith("250 2.0.0 OK")
        (stored,) = await mx.inbox_bytes("alice@example.test")
        assert SMUGGLED in stored
        assert await mx.inbox("bob@example.test") == []
    assert await client.command("NOOP") == ["250 2.0.0 OK"]


async def test_only_crlf_dot_crlf_ends_data(mx: Mx) -> None:
    client = await mx.connect()
    await _start_transaction(client)
    await client.send(b"Subject: a\r\n\r\nline\r\n.\r\n" + SMUGGLED + b".\r\n")
    assert (await client.reply())[0].startswith("250 2.0.0 OK")
    # the second transaction is an ordinary pipelined one, from the same authenticated-nothing client
    replies = [await client.reply() for _ in range(4)]
    assert [r[0][:3] for r in replies] == ["250", "250", "354", "250"]
    assert len(await mx.inbox("bob@example.test")) == 1


async def test_plaintext_pipelined_after_starttls_is_discarded(mx: Mx) -> None:
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO c")
    await client.send(b"STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
    assert await client.reply() == ["220 2.0.0 ready to start TLS"]
    await client.starttls()
    # the injected commands never ran: the session starts again from the greeting state
    assert (await client.command("MAIL FROM:<x@remote.test>"))[0].startswith("503")
    ehlo = await client.command("EHLO c")
    assert "250-STARTTLS" not in ehlo and "250 STARTTLS" not in ehlo
    assert (await client.command("MAIL FROM:<x@remote.test>"))[0].startswith("250")
    assert (await client.command("RCPT TO:<alice@example.test>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(b"Subject: over tls\r\n\r\nx\r\n.\r\n")
    assert (await client.reply())[0].startswith("250")
    (stored,) = await mx.inbox_bytes("alice@example.test")
    assert b"with ESMTPS id" in stored and b"(using TLSv1." in stored
    assert (await client.command("STARTTLS"))[0][:1] == "5"  # not offered again (RFC 3207 §4.2)


RELAY_ATTEMPTS = [
    "victim@elsewhere.test",
    "VICTIM@ElseWhere.TEST",
    "victim@elsewhere.test.",
    "<@example.test:victim@elsewhere.test>",
    "<@example.test,@mx.example.test:victim@elsewhere.test>",
    "victim@[127.0.0.1]",
    "victim@[IPv6:::1]",
    "postmaster@elsewhere.test",
    "victim@example.test.elsewhere.test",
    "victim@sub.example.test",
]
LOCAL_LOOKALIKES = [  # our domain, so never relayed: unknown users here (or the catch-all's, see below)
    "victim%elsewhere.test@example.test",
    '"victim@elsewhere.test"@example.test',
    "elsewhere.test!victim@example.test",
    "victim%elsewhere.test%example.test@example.test",
]
MALFORMED = [
    "victim@elsewhere.test@example.test",
    "alice@example.test@elsewhere.test",
    "victim@elsewhere.test>",
    "<victim@elsewhere.test",
    "victim",
]


@pytest.mark.parametrize("sender", ["<mallory@remote.test>", "<alice@example.test>", "<>"])
async def test_open_relay_matrix(mx: Mx, sender: str) -> None:
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO elsewhere.test")
    assert (await client.command(f"MAIL FROM:{sender}"))[0].startswith("250")
    for target in RELAY_ATTEMPTS:
        path = target if target.startswith("<") else f"<{target}>"
        reply = await client.command(f"RCPT TO:{path}")
        assert reply[0].startswith("554 5.7.1") and "relay access denied" in reply[0], (target, reply)
    for target in LOCAL_LOOKALIKES:
        reply = await client.command(f"RCPT TO:<{target}>")
        assert reply[0].startswith("550 5.1.1"), (target, reply)
    for target in MALFORMED:
        path = target if target.startswith("<") or target.endswith(">") else f"<{target}>"
        reply = await client.command(f"RCPT TO:{path}")
        assert reply[0][:1] == "5" and not reply[0].startswith("250"), (target, reply)
    assert await client.command("DATA") == ["554 5.5.1 no valid recipients"]
    assert await _all_mail(mx) == 0


async def test_catch_all_keeps_lookalikes_local(mx: Mx) -> None:
    await mx.store.add_alias("@example.test", ["alice@example.test"])
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("HELO elsewhere.test")
    await client.command("MAIL FROM:<mallory@remote.test>")
    for target in LOCAL_LOOKALIKES:
        assert (await client.command(f"RCPT TO:<{target}>"))[0].startswith("250"), target
    assert (await client.command("RCPT TO:<victim@elsewhere.test>"))[0].startswith("554")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(b"Subject: lookalikes\r\n\r\nx\r\n.\r\n")
    assert (await client.reply())[0].startswith("250")
    account = await mx.store.get_account("alice@example.test")
    assert account is not None
    inbox = await mx.store.get_mailbox(account.id, INBOX)
    assert inbox is not None and inbox.messages == 1  # one local copy, nothing anywhere else
    assert await _all_mail(mx) == 1


async def test_starttls_refuses_tls_older_than_1_2(mx: Mx) -> None:
    import asyncio
    import ssl
    import warnings

    from .harness import client_tls

    old = client_tls()
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    with warnings.catch_warnings():  # the client side is deliberately outdated
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO c")
    assert await client.command("STARTTLS") == ["220 2.0.0 ready to start TLS"]
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await client.writer.start_tls(old)
    modern = await mx.connect()
    assert (await modern.reply())[0].startswith("220")
    await modern.command("EHLO c")
    await modern.command("STARTTLS")
    await modern.starttls()
    tls = modern.writer.get_extra_info("ssl_object")
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert any(aead in tls.cipher()[0] for aead in ("GCM", "CHACHA20"))
