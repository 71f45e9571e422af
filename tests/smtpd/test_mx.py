"""The MX session: transcripts over real sockets against a real store (fixed clock and ids)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pochta.mail.envelope import Envelope
from pochta.mail.mime import ParsedMessage

from .harness import Mx, running_mx

MESSAGE = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHi Alice.\r\n..leading dot\r\n"


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path, limits={"shutdown_grace": 2.0}) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        yield server


async def test_greeting_ehlo_and_quit(mx: Mx) -> None:
    client = await mx.transcript(
        """
        S: 220 mx.example.test ESMTP Pochta
        C: EHLO client.example
        S: 250-mx.example.test
        S: 250-PIPELINING
        S: 250-SIZE 52428800
        S: 250-8BITMIME
        S: 250-SMTPUTF8
        S: 250-CHUNKING
        S: 250-BINARYMIME
        S: 250-DSN
        S: 250-ENHANCEDSTATUSCODES
        S: 250 STARTTLS
        C: HELO client.example
        S: 250 mx.example.test
        C: NOOP
        S: 250 2.0.0 OK
        C: HELP
        S: 214 2.0.0 *
        C: VRFY alice
        S: 252 2.5.2 cannot VRFY user, but will accept message
        C: EXPN staff
        S: 502 5.5.1 EXPN not available
        C: AUTH PLAIN AGFsaWNlAHg=
        S: 503 *
        C: QUIT
        S: 221 2.0.0 mx.example.test closing
        """
    )
    assert await client.is_closed()


async def test_delivery_stores_the_exact_message_with_trace_headers(mx: Mx) -> None:
    client = await mx.transcript(
        """
        S: 220 *
        C: EHLO client.example
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250 STARTTLS
        C: MAIL FROM:<carol@remote.test> SIZE=100
        S: 250 2.1.0 <carol@remote.test> sender ok
        C: RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test
        S: 250 2.1.5 <alice@example.test> recipient ok
        C: DATA
        S: 354 end data with <CR><LF>.<CR><LF>
        """
    )
    await client.send(MESSAGE.replace(b"\r\n..leading", b"\r\n...leading") + b".\r\n")
    assert await client.reply() == ["250 2.0.0 OK id=id0001"]
    await client.close()
    (stored,) = await mx.inbox_bytes("alice@example.test")
    assert stored == (
        b"Return-Path: <carol@remote.test>\r\n"
        b"Received: from client.example ([127.0.0.1])\r\n"
        b"\tby mx.example.test (Pochta) with ESMTP id id0001\r\n"
        b"\tfor <alice@example.test>;\r\n"
        b"\tFri, 27 Nov 2026 12:00:00 +0000\r\n" + MESSAGE
    )
    (message,) = await mx.inbox("alice@example.test")
    assert message.size == len(stored) and message.flags == frozenset()
    assert message.structure is not None and b'"hello"' in ParsedMessage.loads(message.structure).envelope
    assert message.envelope is not None
    envelope = Envelope.loads(message.envelope)
    assert envelope.mail_from == "carol@remote.test"
    assert envelope.recipients[0].notify == ("FAILURE", "SUCCESS")
    assert envelope.recipients[0].orcpt == "rfc822;alice@example.test"


async def test_unknown_user_relay_and_bad_syntax_are_refused_at_rcpt(mx: Mx) -> None:
    client = await mx.transcript(
        """
        S: 220 *
        C: HELO client.example
        S: 250 mx.example.test
        C: RCPT TO:<alice@example.test>
        S: 503 5.5.1 *
        C: MAIL FROM:<carol@remote.test>
        S: 250 *
        C: RCPT TO:<nobody@example.test>
        S: 550 5.1.1 <nobody@example.test>: no such user here
        C: RCPT TO:<someone@elsewhere.test>
        S: 554 5.7.1 <someone@elsewhere.test>: relay access denied
        C: RCPT TO:<alice@example.test
        S: 501 *
        C: DATA
        S: 554 5.5.1 no valid recipients
        C: FOO bar
        S: 500 5.5.2 command not recognized
        C: RSET
        S: 250 2.0.0 OK
        C: QUIT
        S: 221 *
        """
    )
    await client.close()
    assert await mx.inbox("alice@example.test") == []


async def test_aliases_lists_catch_all_and_subaddresses(mx: Mx) -> None:
    await mx.store.add_alias("team@example.test", ["alice@example.test", "bob@example.test"])
    await mx.store.add_alias("@example.test", ["bob@example.test"])
    client = await mx.transcript(
        """
        S: 220 *
        C: EHLO c
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250 *
        C: MAIL FROM:<>
        S: 250 2.1.0 <> sender ok
        C: RCPT TO:<team@example.test>
        S: 250 *
        C: RCPT TO:<alice+news@example.test>
        S: 250 *
        C: RCPT TO:<whoever@example.test>
        S: 250 *
        C: DATA
        S: 354 *
        C: Subject: to the team
        C:
        C: body
        C: .
        S: 250 2.0.0 OK id=id0001
        """
    )
    await client.close()
    alice = await mx.inbox("alice@example.test")
    bob = await mx.inbox("bob@example.test")
    assert len(alice) == 1 and len(bob) == 1  # one copy per account, however many routes led there
    assert alice[0].blob_id == bob[0].blob_id  # stored once
    assert alice[0].envelope is not None
    assert [r.address for r in Envelope.loads(alice[0].envelope).recipients] == [
        "team@example.test",
        "alice+news@example.test",
    ]
    assert b"\tfor <" not in await mx.blobs.read(alice[0].blob_id)  # several recipients: none named


async def test_postmaster_without_domain_is_accepted(mx: Mx) -> None:
    await mx.store.add_alias("postmaster@example.test", ["alice@example.test"])
    client = await mx.transcript(
        """
        S: 220 *
        C: HELO c
        S: 250 *
        C: MAIL FROM:<x@remote.test>
        S: 250 *
        C: RCPT TO:<Postmaster>
        S: 250 2.1.5 <Postmaster> recipient ok
        C: DATA
        S: 354 *
        C: Subject: for the postmaster
        C:
        C: .
        S: 250 *
        """
    )
    await client.close()
    assert len(await mx.inbox("alice@example.test")) == 1


async def test_full_mailbox_is_refused_at_rcpt_and_race_at_end_of_data(mx: Mx) -> None:
    await mx.add_user("full@example.test", quota=1000)
    client = await mx.transcript(
        """
        S: 220 *
        C: HELO c
        S: 250 *
        C: EHLO c
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250-*
        S: 250 *
        C: MAIL FROM:<x@remote.test> SIZE=5000
        S: 250 *
        C: RCPT TO:<full@example.test>
        S: 452 4.2.2 <full@example.test>: mailbox full, try again later
        C: RSET
        S: 250 *
        C: MAIL FROM:<x@remote.test>
        S: 250 *
        C: RCPT TO:<full@example.test>
        S: 250 *
        C: RCPT TO:<alice@example.test>
        S: 250 *
        C: DATA
        S: 354 *
        """
    )
    await client.send(b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n.\r\n")
    assert await client.reply() == ["452 4.2.2 mailbox full, try again later"]
    assert await mx.inbox("alice@example.test") == []  # all recipients or none
    await client.close()


async def test_store_failure_after_data_is_a_temporary_failure(mx: Mx) -> None:
    await mx.add_user("leaving@example.test")
    client = await mx.transcript(
        """
        S: 220 *
        C: HELO c
        S: 250 *
        C: MAIL FROM:<x@remote.test>
        S: 250 *
        C: RCPT TO:<leaving@example.test>
        S: 250 *
        C: RCPT TO:<alice@example.test>
        S: 250 *
        C: DATA
        S: 354 *
        """
    )
    await mx.store.remove_account("leaving@example.test")  # gone between RCPT and end of data
    await client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert await client.reply() == ["451 4.3.0 could not store the message, try again later"]
    assert await mx.inbox("alice@example.test") == []
    assert await client.command("NOOP") == ["250 2.0.0 OK"]  # the session goes on
    await client.close()


async def test_bdat_chunks_and_binarymime(mx: Mx) -> None:
    client = await mx.connect()
    await client.reply()
    assert (await client.command("EHLO c"))[-1] == "250 STARTTLS"
    assert await client.command("MAIL FROM:<x@remote.test> BODY=BINARYMIME") == ["250 2.1.0 <x@remote.test> sender ok"]
    assert (await client.command("RCPT TO:<bob@example.test>"))[0].startswith("250")
    first = b"Subject: chunks\r\n\r\nline one\r\n.\r\n"
    second = b"\x00\xffbinary\r\n"
    await client.send(b"BDAT %d\r\n" % len(first) + first)
    assert await client.reply() == [f"250 2.0.0 {len(first)} octets received"]
    await client.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert await client.reply() == ["250 2.0.0 OK id=id0001"]
    await client.close()
    (stored,) = await mx.inbox_bytes("bob@example.test")
    assert stored.endswith(first + second)


async def test_bare_line_endings_are_refused_and_nothing_is_stored(mx: Mx) -> None:
    client = await mx.connect()
    await client.reply()
    await client.command("HELO c")
    await client.command("MAIL FROM:<x@remote.test>")
    await client.command("RCPT TO:<alice@example.test>")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(b"Subject: x\r\n\r\nbare\nline\r\n.\r\n")
    assert await client.reply() == ["550 5.6.2 bare CR or LF in message content (RFC 5321 §2.3.8)"]
    assert await client.command("NOOP") == ["250 2.0.0 OK"]
    await client.close()
    assert await mx.inbox("alice@example.test") == []


async def test_size_limits(tmp_path: Path) -> None:
    async with running_mx(tmp_path, smtp={"max_message_size": 1000, "max_header_size": 100}) as mx:
        await mx.add_user("alice@example.test")
        client = await mx.connect()
        await client.reply()
        await client.command("EHLO c")
        assert await client.command("MAIL FROM:<x@remote.test> SIZE=5000") == [
            "552 5.3.4 message size exceeds fixed maximum message size"
        ]
        await client.command("MAIL FROM:<x@remote.test>")
        await client.command("RCPT TO:<alice@example.test>")
        await client.command("DATA")
        await client.send(b"Subject: x\r\n\r\n" + b"y" * 2000 + b"\r\n.\r\n")
        assert await client.reply() == ["552 5.3.4 message size exceeds fixed limit"]
        await client.command("MAIL FROM:<x@remote.test>")
        await client.command("RCPT TO:<alice@example.test>")
        await client.command("DATA")
        await client.send(b"X-Long: " + b"h" * 200 + b"\r\n\r\nbody\r\n.\r\n")
        assert await client.reply() == ["552 5.3.4 message header too large"]
        await client.close()
        assert await mx.inbox("alice@example.test") == []


async def test_too_many_recipients_and_too_many_errors(tmp_path: Path) -> None:
    async with running_mx(tmp_path, smtp={"max_recipients": 100, "max_errors": 3}) as mx:
        await mx.add_user("alice@example.test")
        await mx.store.add_alias("@example.test", ["alice@example.test"])
        client = await mx.connect()
        await client.reply()
        await client.command("HELO c")
        await client.command("MAIL FROM:<x@remote.test>")
        for n in range(100):
            assert (await client.command(f"RCPT TO:<r{n}@example.test>"))[0].startswith("250")
        assert await client.command("RCPT TO:<r100@example.test>") == ["452 4.5.3 too many recipients"]
        await client.command("RSET")
        for _ in range(3):
            assert (await client.command("BOGUS"))[0].startswith("500")
        assert (await client.command("BOGUS"))[0].startswith("421 4.7.0")
        assert await client.is_closed()
        await client.close()


async def test_long_line_gets_an_error_and_the_session_goes_on(mx: Mx) -> None:
    client = await mx.connect()
    await client.reply()
    assert await client.command("HELO " + "x" * 10000) == ["500 5.5.2 line too long"]
    assert await client.command("NOOP") == ["250 2.0.0 OK"]
    await client.send(b"\x00\xff\xfe garbage\r\n")
    assert (await client.reply())[0].startswith("500 5.5.2")
    assert await client.command("NOOP") == ["250 2.0.0 OK"]
    await client.close()


async def test_pipelined_transaction(mx: Mx) -> None:
    client = await mx.connect()
    await client.reply()
    await client.command("EHLO c")
    await client.send(
        b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
        b"RCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    replies = [await client.reply() for _ in range(5)]
    assert [r[0][:3] for r in replies] == ["250", "250", "550", "250", "354"]
    await client.send(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert (await client.reply())[0].startswith("250 2.0.0 OK")
    assert (await client.reply())[0].startswith("221")
    await client.close()
    assert len(await mx.inbox("alice@example.test")) == 1
    assert len(await mx.inbox("bob@example.test")) == 1


async def test_idle_session_is_closed_with_421(tmp_path: Path) -> None:
    async with running_mx(tmp_path, limits={"idle_timeout": 0.3}) as mx:
        client = await mx.connect()
        await client.reply()
        assert await client.reply() == ["421 4.4.2 idle too long, closing connection"]
        assert await client.is_closed()
        await client.close()


async def test_connections_per_ip_are_capped(tmp_path: Path) -> None:
    async with running_mx(tmp_path, limits={"max_connections_per_ip": 2}) as mx:
        first, second = await mx.connect(), await mx.connect()
        assert (await first.reply())[0].startswith("220")
        assert (await second.reply())[0].startswith("220")
        third = await mx.connect()
        assert await third.reply() == ["421 4.7.0 too many connections from your address, try again later"]
        assert await third.is_closed()
        await first.command("QUIT")
        await first.close()
        await asyncio.sleep(0.1)
        fourth = await mx.connect()
        assert (await fourth.reply())[0].startswith("220")
        for client in (second, third, fourth):
            await client.close()


async def test_shutdown_lets_an_open_transaction_finish(tmp_path: Path) -> None:
    async with running_mx(tmp_path, limits={"shutdown_grace": 10.0}) as mx:
        await mx.add_user("alice@example.test")
        idle = await mx.connect()
        await idle.reply()
        busy = await mx.connect()
        await busy.reply()
        await busy.command("HELO c")
        await busy.command("MAIL FROM:<x@remote.test>")
        await busy.command("RCPT TO:<alice@example.test>")
        await busy.command("DATA")
        await busy.send(b"Subject: during shutdown\r\n\r\n")
        stopping = asyncio.ensure_future(mx.server.stop())
        assert await idle.reply() == ["421 4.3.2 service shutting down, try again later"]
        await busy.send(b"still arriving\r\n.\r\n")
        assert (await busy.reply())[0].startswith("250 2.0.0 OK")  # stored, then told
        assert await busy.command("NOOP") == ["421 4.3.2 service shutting down, try again later"]
        await stopping
        for client in (idle, busy):
            await client.close()


async def test_alias_with_an_external_target_forwards_through_the_queue(mx: Mx) -> None:
    await mx.store.add_alias("fwd@example.test", ["alice@example.test", "someone@remote.test"])
    client = await mx.transcript(
        """
        S: 220 *
        C: HELO c
        S: 250 *
        C: MAIL FROM:<x@sender.test>
        S: 250 *
        C: RCPT TO:<fwd@example.test>
        S: 250 2.1.5 <fwd@example.test> recipient ok
        C: DATA
        S: 354 *
        C: Subject: for a list
        C:
        C: body
        C: .
        S: 250 2.0.0 OK id=id0001
        """
    )
    await client.close()
    (stored,) = await mx.inbox_bytes("alice@example.test")
    (entry,) = await mx.store.queue_entries()
    assert entry.domain == "remote.test" and [r.address for r in entry.recipients] == ["someone@remote.test"]
    assert Envelope.loads(entry.envelope).mail_from == "x@sender.test"
    assert await mx.blobs.read(entry.blob_id) == stored  # one stored copy serves both


async def test_garbage_never_kills_the_server(mx: Mx) -> None:
    import random

    rng = random.Random(5321)
    pieces = [
        b"EHLO x\r\n",
        b"MAIL FROM:<a@b.test>\r\n",
        b"RCPT TO:<alice@example.test>\r\n",
        b"DATA\r\n",
        b"BDAT 5\r\n",
        b"BDAT 0 LAST\r\n",
        b".\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"\x00",
        b"\xff\xfe",
        b"STARTTLS\r\n",
        b"AUTH PLAIN =\r\n",
        b"RSET\r\n",
        b"MAIL FROM:<\r\n",
        b"RCPT TO:<@:>\r\n",
        b"x" * 5000,
    ]
    for _ in range(30):
        client = await mx.connect()
        assert (await client.reply())[0].startswith("220")
        junk = b"".join(
            rng.choice(pieces) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 64)) for _ in range(20)
        )
        await client.send(junk + b"\r\nQUIT\r\n")
        client.writer.write_eof()  # junk may have opened DATA, BDAT or STARTTLS: the end of input ends it
        try:
            data = await asyncio.wait_for(client.reader.read(), 10)  # every reply, then the close
        except ConnectionError:
            data = b""
        for line in data.split(b"\r\n")[:-1]:
            assert line[:3].isdigit() and line[0:1] in b"2345", line
        await client.close()
    assert (await mx.transcript("S: 220 *\nC: NOOP\nS: 250 2.0.0 OK")) is not None


async def test_a_large_message_spills_to_disk_and_is_stored_exactly(mx: Mx) -> None:
    client = await mx.connect()
    await client.reply()
    await client.command("EHLO c")
    await client.command("MAIL FROM:<x@remote.test> SIZE=3000000")
    await client.command("RCPT TO:<alice@example.test>")
    await client.command("RCPT TO:<bob@example.test>")
    assert (await client.command("DATA"))[0].startswith("354")
    lines = [b"line %07d " % n + b"z" * 60 for n in range(40000)]  # about 2.8 MB, over the in-memory part
    content = b"Subject: large\r\nContent-Type: text/plain\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    await client.send(content + b".\r\n")
    assert (await client.reply())[0].startswith("250 2.0.0 OK")
    (stored,) = await mx.inbox_bytes("alice@example.test")
    assert stored.endswith(content) and len(stored) > 2_800_000
    (message,) = await mx.inbox("bob@example.test")
    assert message.size == len(stored)
    assert message.structure is not None
    assert b'"large"' in ParsedMessage.loads(message.structure).envelope
    assert [p for p in (mx.blobs.root / "tmp").rglob("*") if p.is_file()] == []
