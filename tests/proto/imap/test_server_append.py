"""APPEND streams its messages (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND, RFC 3516 literal8, RFC 7888)."""

import datetime

from pochta.proto.imap import (
    AppendEnd,
    AppendStart,
    Command,
    Continuation,
    InvalidCommand,
    Limits,
    LiteralChunk,
    LiteralEnd,
    NeedData,
    Paused,
    Status,
    Tagged,
)
from pochta.proto.imap import (
    commands as c,
)
from pochta.proto.imap.responses import appenduid

from .dialogue import converse, events_of, logged_in, merged

RFC_MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


def test_rfc9051_example_synchronising() -> None:
    # RFC 9051 §6.3.12
    conn = logged_in()
    conn.receive_data(b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(RFC_MESSAGE))
    start = conn.next_event()
    assert start == AppendStart(
        tag="A003",
        mailbox="saved-messages",
        flags=("\\Seen",),
        date=None,
        size=len(RFC_MESSAGE),
        is_binary=False,
        is_sync=True,
        index=1,
    )
    assert conn.next_event() == Paused()
    assert conn.send(Continuation()) == b"+ Ready\r\n"
    conn.receive_data(RFC_MESSAGE[:100])
    assert conn.next_event() == LiteralChunk(data=RFC_MESSAGE[:100])
    assert conn.next_event() == NeedData()
    conn.receive_data(RFC_MESSAGE[100:] + b"\r\n")
    assert conn.next_event() == LiteralChunk(data=RFC_MESSAGE[100:])
    assert conn.next_event() == LiteralEnd()
    assert conn.next_event() == AppendEnd(tag="A003", count=1)
    reply = Tagged(tag="A003", status=Status.OK, text="APPEND completed", code=appenduid(38505, [3955]))
    assert conn.send(reply) == b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"


def test_large_literal_streams_in_pieces_without_buffering() -> None:
    size = 5 * 2**20
    conn = logged_in()
    conn.receive_data(b"a APPEND INBOX {%d+}\r\n" % size)
    assert isinstance(conn.next_event(), AppendStart)
    received = 0
    piece = b"x" * 65536
    while received < size:
        conn.receive_data(piece)
        event = conn.next_event()
        assert isinstance(event, LiteralChunk) and len(event.data) == len(piece)
        received += len(event.data)
        assert len(conn._buffer) == 0  # nothing held back
        if received < size:
            assert conn.next_event() == NeedData()
    conn.receive_data(b"\r\n")
    assert conn.next_event() == LiteralEnd()
    assert conn.next_event() == AppendEnd(tag="a", count=1)


def test_multiappend_whole_and_bytewise() -> None:
    data = (
        b'a APPEND "Sent" (\\Seen $Forwarded) "21-Dec-2023 09:05:00 +0000" {5}\r\nhello'
        b" (\\Flagged) {3+}\r\nabc ~{5}\r\na\x00\r\nb () {0+}\r\n\r\nb NOOP\r\n"
    )
    events = events_of(data, logged_in)
    assert [type(event) for event in events] == [
        AppendStart, LiteralChunk, LiteralEnd,
        AppendStart, LiteralChunk, LiteralEnd,
        AppendStart, LiteralChunk, LiteralEnd,
        AppendStart, LiteralEnd,
        AppendEnd, Command,
    ]  # fmt: skip
    first, second, third, fourth = (event for event in events if isinstance(event, AppendStart))
    assert first.mailbox == "Sent" and first.flags == ("\\Seen", "$Forwarded") and first.is_sync
    assert first.date == datetime.datetime(2023, 12, 21, 9, 5, tzinfo=datetime.UTC)
    assert (second.index, second.flags, second.is_sync, second.date) == (2, ("\\Flagged",), False, None)
    assert third.is_binary and third.size == 5 and third.flags == ()
    assert events[7] == LiteralChunk(data=b"a\x00\r\nb")
    assert fourth.size == 0 and fourth.index == 4
    assert events[11] == AppendEnd(tag="a", count=4)
    assert events[12] == Command(tag="b", command=c.Noop())


def test_mailbox_as_a_literal() -> None:
    events = events_of(b"a APPEND {5}\r\ninbox {2}\r\nhi\r\n", logged_in)
    assert events[0:2] == [events[0], events[1]]
    starts = [event for event in events if isinstance(event, AppendStart)]
    assert len(starts) == 1 and starts[0].mailbox == "INBOX" and starts[0].size == 2


def test_refused_synchronising_message_ends_the_command() -> None:
    conn = logged_in()
    conn.receive_data(b"a APPEND nothere {100}\r\nb NOOP\r\n")
    assert isinstance(conn.next_event(), AppendStart)
    conn.send(Tagged(tag="a", status=Status.NO, text="[TRYCREATE] no such mailbox"))
    assert conn.next_event() == Command(tag="b", command=c.Noop())


def test_too_large_is_toobig() -> None:
    limits = Limits(max_append=10)
    make = lambda: logged_in(limits=limits)  # noqa: E731
    refusal = events_of(b"a APPEND INBOX {11}\r\n", make)[0]
    assert isinstance(refusal, InvalidCommand)
    assert refusal.reply.status is Status.NO and refusal.reply.code is not None
    assert refusal.reply.code.name == "TOOBIG"  # RFC 7889 §4
    # a non-synchronising one arrives anyway: dropped, then refused
    events = events_of(b"a APPEND INBOX {11+}\r\n01234567890 {3+}\r\nabc\r\nb NOOP\r\n", make)
    assert [type(event) for event in events] == [InvalidCommand, Command]
    assert events[0].reply.code is not None and events[0].reply.code.name == "TOOBIG"  # type: ignore[union-attr]


def test_too_large_second_message() -> None:
    limits = Limits(max_append=10)
    events = events_of(b"a APPEND INBOX {1+}\r\nx {11}\r\n", lambda: logged_in(limits=limits))
    assert [type(event) for event in events] == [AppendStart, LiteralChunk, LiteralEnd, InvalidCommand]


def test_garbage_after_a_message_is_bad() -> None:
    events = events_of(b"a APPEND INBOX {1+}\r\nx garbage\r\nb NOOP\r\n", logged_in)
    assert [type(event) for event in events] == [AppendStart, LiteralChunk, LiteralEnd, InvalidCommand, Command]


def test_bad_append_arguments() -> None:
    for line in (
        b"a APPEND INBOX (\\Seen {1}",
        b'a APPEND INBOX "not a date" {1}',
        b"a APPEND INBOX (\\Seen)(x) {1}",
        b"a APPEND &- x {1}",
    ):
        events = events_of(line + b"\r\n", logged_in)
        assert len(events) == 1 and isinstance(events[0], InvalidCommand), line


def test_bad_append_with_nonsync_literal_drops_its_octets() -> None:
    events = events_of(b'a APPEND INBOX "bad date" {5+}\r\nb NOO\r\nc NOOP\r\n', logged_in)
    assert [type(event) for event in events] == [InvalidCommand, Command]
    assert events[1] == Command(tag="c", command=c.Noop())


def test_append_before_login_is_bad_and_nonsync_octets_dropped() -> None:
    events = events_of(b"a APPEND INBOX {6+}\r\nb NOOP\r\nc NOOP\r\n")
    assert [type(event) for event in events] == [InvalidCommand, Command]
    assert events[1] == Command(tag="c", command=c.Noop())


def test_eof_in_a_message() -> None:
    conn = logged_in()
    transcript = converse([b"a APPEND INBOX {10+}\r\nabc"], conn=conn)
    assert [type(event) for event in transcript.events] == [AppendStart, LiteralChunk]


def test_too_many_messages() -> None:
    limits = Limits(max_append_messages=2)
    data = b"a APPEND INBOX {1+}\r\nx {1+}\r\ny {1+}\r\nz\r\nb NOOP\r\n"
    events = events_of(data, lambda: logged_in(limits=limits))
    assert isinstance(events[-2], InvalidCommand)
    assert events[-1] == Command(tag="b", command=c.Noop())


def test_split_everywhere_gives_same_events() -> None:
    data = b"a APPEND INBOX {3}\r\nabc {2+}\r\nde\r\nb NOOP\r\n"
    whole = converse([data], conn=logged_in(), eof=False)
    for cut in range(1, len(data)):
        split = converse([data[:cut], data[cut:]], conn=logged_in(), eof=False)
        assert merged(split.events) == merged(whole.events)
        assert split.output == whole.output
