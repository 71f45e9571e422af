"""RETR and TOP: streamed from the blob, byte-stuffed on the wire, exactly the stored octets for the client."""

from __future__ import annotations

from pochta.pop3d import CHUNK_SIZE

from .harness import Client, Pop3

ALICE = "alice@example.test"


async def _logged_in(pop3: Pop3) -> Client:
    client = await pop3.connect()
    await client.line()
    assert (await client.login(ALICE)).startswith("+OK")
    return client


async def test_dot_lines_are_stuffed_on_the_wire_and_the_message_comes_back_exactly(pop3: Pop3) -> None:
    message = b"Subject: dots\r\n\r\n.\r\n..two\r\n. space\r\nend.\r\n.\r\n"
    await pop3.deliver(ALICE, message)
    client = await _logged_in(pop3)
    status, wire = await client.multiline("RETR 1")
    assert status == f"+OK {len(message)} octets"
    assert wire == b"Subject: dots\r\n\r\n..\r\n...two\r\n.. space\r\nend.\r\n..\r\n.\r\n"
    assert await client.retrieve("RETR 1") == message


async def test_a_message_without_a_final_line_ending_gets_one_before_the_dot(pop3: Pop3) -> None:
    await pop3.deliver(ALICE, b"Subject: x\r\n\r\nno newline at the end")
    client = await _logged_in(pop3)
    _, wire = await client.multiline("RETR 1")
    assert wire == b"Subject: x\r\n\r\nno newline at the end\r\n.\r\n"


async def test_a_large_message_is_streamed_in_chunks_byte_exact(pop3: Pop3) -> None:
    line = b"." + b"x" * 98 + b"\r\n"  # every line starts with a dot; chunk borders fall anywhere
    message = b"Subject: big\r\n\r\n" + line * (3 * CHUNK_SIZE // len(line)) + bytes(range(32, 127)) + b"\r\n"
    await pop3.deliver(ALICE, message)
    stored = (await pop3.inbox(ALICE))[0]
    assert await pop3.blobs.read(stored.blob_id) == message
    client = await _logged_in(pop3)
    assert await client.retrieve("RETR 1") == message


async def test_top_sends_the_header_and_n_body_lines(pop3: Pop3) -> None:
    header = b"From: a@example.test\r\nSubject: top\r\n\r\n"
    body = b"one\r\n.two\r\nthree\r\nfour\r\n"
    await pop3.deliver(ALICE, header + body)
    client = await _logged_in(pop3)
    assert await client.retrieve("TOP 1 0") == header
    assert await client.retrieve("TOP 1 2") == header + b"one\r\n.two\r\n"
    assert await client.retrieve("TOP 1 100") == header + body
    _, wire = await client.multiline("TOP 1 2")
    assert wire.endswith(b"one\r\n..two\r\n.\r\n")
    assert await client.command("TOP 2 1") == "-ERR no such message"


async def test_top_on_a_large_body_stops_after_its_lines(pop3: Pop3) -> None:
    header = b"Subject: big\r\n\r\n"
    body = b"".join(b"line %d\r\n" % n for n in range(20000))  # about 2 chunks
    await pop3.deliver(ALICE, header + body)
    client = await _logged_in(pop3)
    assert await client.retrieve("TOP 1 15000") == header + body[: body.index(b"line 15000\r\n")]


async def test_a_missing_blob_gets_sys_temp_and_the_session_goes_on(pop3: Pop3) -> None:
    await pop3.deliver(ALICE, b"Subject: gone\r\n\r\nbody\r\n")
    stored = (await pop3.inbox(ALICE))[0]
    await pop3.blobs.delete(stored.blob_id)
    client = await _logged_in(pop3)
    assert await client.command("RETR 1") == "-ERR [SYS/TEMP] message is no longer available"
    assert await client.command("NOOP") == "+OK"
