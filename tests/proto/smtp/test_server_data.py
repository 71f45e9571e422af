"""Message content over the wire: DATA, BDAT, SMTP smuggling, size and header limits."""

import pytest

from pochta.proto.smtp import (
    Bdat,
    BdatEnd,
    DataChunk,
    DataEnd,
    Limits,
    MailFrom,
    ServerConnection,
)

from .dialogue import bytewise, converse, merged
from .test_content import SMUGGLING

ENVELOPE = b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@example.test>\r\n"


def both(packets: list[bytes], **kwargs: object):  # type: ignore[no-untyped-def]
    """Run whole and one octet at a time; both must agree; return the whole run."""
    make = kwargs.pop("new_conn", lambda: ServerConnection(hostname="mx.example.test"))
    whole = converse(packets, conn=make(), **kwargs)  # type: ignore[operator, arg-type]
    octets = converse(bytewise(packets), conn=make(), **kwargs)  # type: ignore[operator, arg-type]
    assert merged(octets.events) == merged(whole.events)
    assert octets.written == whole.written
    return whole


def test_data_streams_chunks_as_they_arrive() -> None:
    conn = ServerConnection(hostname="mx.example.test")
    dialogue = converse([ENVELOPE + b"DATA\r\nfirst part\r\n", b"second\r\n", b".\r\n"], conn=conn)
    chunks = dialogue.of_type(DataChunk)
    assert [chunk.data for chunk in chunks] == [b"first part\r\n", b"second\r\n"]
    assert dialogue.of_type(DataEnd) == [
        DataEnd(size=20, has_bare_line_ending=False, is_too_large=False, is_header_too_large=False)
    ]


def test_commands_after_the_message_are_commands_again() -> None:
    data = ENVELOPE + b"DATA\r\nx\r\n.\r\nMAIL FROM:<c@c.example>\r\nRCPT TO:<d@example.test>\r\nDATA\r\ny\r\n.\r\n"
    dialogue = both([data])
    assert len(dialogue.of_type(DataEnd)) == 2
    assert dialogue.content == b"x\r\ny\r\n"


@pytest.mark.parametrize("sequence", SMUGGLING, ids=repr)
def test_smuggling_gives_one_message_flagged(sequence: bytes) -> None:
    smuggled = (
        b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
        b"From: Admin <admin@bank.example>\r\n\r\nsend money"
    )
    data = ENVELOPE + b"DATA\r\nSubject: hi\r\n\r\nhello" + sequence + smuggled + b"\r\n.\r\nQUIT\r\n"
    dialogue = both([data])
    ends = dialogue.of_type(DataEnd)
    assert len(ends) == 1  # no second message
    assert len(dialogue.of_type(MailFrom)) == 1  # the smuggled MAIL never parsed as a command
    assert smuggled in dialogue.content
    has_bare = b"\x00" not in sequence
    assert ends[0].has_bare_line_ending == has_bare
    assert dialogue.replies[-2] == (
        "550 5.6.2 bare CR or LF in message content (RFC 5321 §2.3.8)" if has_bare else "250 2.0.0 queued"
    )
    assert dialogue.replies[-1] == "221 2.0.0 bye"


def test_over_size_message_is_read_to_its_end_but_not_handed_on() -> None:
    def new_conn() -> ServerConnection:
        return ServerConnection(hostname="mx.example.test", limits=Limits(max_message_size=10))

    body = b"0123456789abcdef\r\n" * 3
    envelope = ENVELOPE.replace(b"<a@c.example>", b"<a@c.example> SIZE=5")
    dialogue = both([envelope + b"DATA\r\n" + body + b".\r\nNOOP\r\n"], new_conn=new_conn)
    assert dialogue.content == body[:10]
    (end,) = dialogue.of_type(DataEnd)
    assert end.is_too_large and end.size == len(body)
    assert dialogue.replies[-2:] == ["552 5.3.4 message size exceeds fixed limit", "250 2.0.0 OK"]


def test_header_block_limit() -> None:
    def new_conn() -> ServerConnection:
        return ServerConnection(hostname="mx.example.test", limits=Limits(max_header_size=20))

    small = both([ENVELOPE + b"DATA\r\nA: 1\r\n\r\n" + b"x" * 100 + b"\r\n.\r\n"], new_conn=new_conn)
    assert not small.of_type(DataEnd)[0].is_header_too_large
    big = both([ENVELOPE + b"DATA\r\n" + b"A: 1\r\n" * 10 + b"\r\nbody\r\n.\r\n"], new_conn=new_conn)
    assert big.of_type(DataEnd)[0].is_header_too_large


def test_eof_inside_data_closes_without_data_end() -> None:
    dialogue = converse([ENVELOPE + b"DATA\r\npartial message\r\n"])
    assert not dialogue.of_type(DataEnd)
    assert type(dialogue.events[-1]).__name__ == "ConnectionClosed"


# ---- BDAT (RFC 3030) -------------------------------------------------------------------------


def test_bdat_chunks_are_raw_and_answered_each() -> None:
    chunk1 = b"Subject: x\r\n\r\n.\r\n"  # a dot line means nothing in BDAT
    chunk2 = b"\x00binary\xff\r\nQUIT\r\n"
    data = (
        b"EHLO c.example\r\nMAIL FROM:<a@c.example> BODY=BINARYMIME\r\nRCPT TO:<b@example.test>\r\n"
        + b"BDAT %d\r\n" % len(chunk1) + chunk1
        + b"BDAT %d LAST\r\n" % len(chunk2) + chunk2
        + b"NOOP\r\n"
    )  # fmt: skip
    dialogue = both([data])
    assert dialogue.content == chunk1 + chunk2
    assert dialogue.of_type(Bdat) == [Bdat(size=len(chunk1), is_last=False), Bdat(size=len(chunk2), is_last=True)]
    ends = dialogue.of_type(BdatEnd)
    assert [(end.size, end.total_size, end.is_last) for end in ends] == [
        (len(chunk1), len(chunk1), False),
        (len(chunk2), len(chunk1) + len(chunk2), True),
    ]
    assert [line[:3] for line in dialogue.replies] == ["220", "250", "250", "250", "250", "250", "250"]


def test_bdat_zero_last_ends_the_message() -> None:
    data = ENVELOPE + b"BDAT 5\r\nhello" + b"BDAT 0 LAST\r\nMAIL FROM:<>\r\n"
    dialogue = both([data])
    assert dialogue.content == b"hello"
    assert [end.is_last for end in dialogue.of_type(BdatEnd)] == [False, True]
    assert dialogue.replies[-1] == "250 2.0.0 OK"  # a new transaction could start


def test_data_after_bdat_and_binarymime_with_data_are_refused() -> None:
    dialogue = both([ENVELOPE + b"BDAT 2\r\nhiDATA\r\n"])
    assert dialogue.replies[-1] == "503 5.5.1 DATA after BDAT"
    binary = ENVELOPE.replace(b"<a@c.example>", b"<a@c.example> BODY=BINARYMIME") + b"DATA\r\n"
    assert both([binary]).replies[-1] == "503 5.5.1 BODY=BINARYMIME needs BDAT"


def test_refused_bdat_still_reads_its_chunk() -> None:
    # RFC 3030 §2: the chunk follows the command; it must never be read as commands.
    data = b"EHLO c.example\r\nBDAT 14\r\nQUIT\r\nNOOP\r\n\r\nNOOP\r\n"
    dialogue = both([data])
    assert dialogue.replies[-2:] == ["503 5.5.1 need MAIL and RCPT before BDAT", "250 2.0.0 OK"]
    no_rcpt = b"EHLO c.example\r\nMAIL FROM:<>\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"
    assert both([no_rcpt]).replies[-2:] == ["554 5.5.1 no valid recipients", "250 2.0.0 OK"]


def test_failed_bdat_chunk_ends_the_transaction() -> None:
    def policy(conn: ServerConnection, event: object):  # type: ignore[no-untyped-def]
        from pochta.proto.smtp import Reply

        from .dialogue import permissive

        if isinstance(event, BdatEnd):
            return Reply(code=452, status="4.3.1", text="spool full")
        return permissive(conn, event)  # type: ignore[arg-type]

    data = ENVELOPE + b"BDAT 3\r\nabcBDAT 3 LAST\r\ndef"
    dialogue = converse([data], policy=policy)
    assert dialogue.replies[-2:] == ["452 4.3.1 spool full", "503 5.5.1 need MAIL and RCPT before BDAT"]
