"""Commands, sequencing, pipelining and limits of the SMTP server core."""

import pytest

from pochta.proto.smtp import (
    ConnectionClosed,
    Ehlo,
    Extensions,
    InvalidCommand,
    Limits,
    LocalProtocolError,
    MailFrom,
    NeedData,
    Paused,
    RcptTo,
    Reply,
    ServerConnection,
    State,
    replies,
)

from .dialogue import converse, transcript

EHLO_REPLY = """
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 52428800
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250-BINARYMIME
    S: 250-DSN
    S: 250 ENHANCEDSTATUSCODES
"""


def test_a_whole_session() -> None:
    dialogue = transcript(
        f"""
        S: 220 mx.example.test ESMTP Pochta
        C: EHLO client.example
        {EHLO_REPLY}
        C: MAIL FROM:<alice@client.example> SIZE=20
        S: 250 2.0.0 OK
        C: RCPT TO:<bob@example.test>
        S: 250 2.0.0 OK
        C: DATA
        S: 354 end data with <CR><LF>.<CR><LF>
        C: Subject: hi
        C:
        C: ..dotted
        C: .
        S: 250 2.0.0 queued
        C: NOOP
        S: 250 2.0.0 OK
        C: RSET
        S: 250 2.0.0 OK
        C: HELP
        S: 214 2.0.0 see https://www.rfc-editor.org/rfc/rfc5321
        C: VRFY bob
        S: 252 2.5.2 cannot VRFY user, but will accept message
        C: EXPN staff
        S: 502 5.5.1 EXPN not available
        C: QUIT
        S: 221 2.0.0 bye
        """
    )
    assert dialogue.content == b"Subject: hi\r\n\r\n.dotted\r\n"
    assert isinstance(dialogue.events[-1], ConnectionClosed)


def test_helo_gets_a_plain_reply_and_no_esmtp_parameters() -> None:
    transcript(
        """
        S: 220 mx.example.test ESMTP Pochta
        C: HELO client.example
        S: 250 mx.example.test
        C: MAIL FROM:<a@client.example> SIZE=10
        S: 555 5.5.4 SIZE parameter not recognized
        C: BDAT 0 LAST
        S: 502 5.5.1 command not implemented
        C: STARTTLS
        S: 502 5.5.1 command not implemented
        """
    )


def test_sequence_errors() -> None:
    transcript(
        """
        S: 220 mx.example.test ESMTP Pochta
        C: MAIL FROM:<a@client.example>
        S: 503 5.5.1 send EHLO or HELO first
        C: RCPT TO:<b@example.test>
        S: 503 5.5.1 need MAIL before RCPT
        C: DATA
        S: 503 5.5.1 need MAIL and RCPT before DATA
        C: EHLO
        S: 501 5.5.4 EHLO and HELO need a domain or address literal
        C: HELO client.example
        S: 250 mx.example.test
        C: MAIL FROM:<a@client.example>
        S: 250 2.0.0 OK
        C: MAIL FROM:<a@client.example>
        S: 503 5.5.1 nested MAIL command
        C: DATA
        S: 554 5.5.1 no valid recipients
        C: DATA now
        S: 501 5.5.4 DATA takes no argument
        C: RSET please
        S: 501 5.5.4 RSET takes no argument
        C: VRFY
        S: 501 5.5.4 VRFY needs an argument
        C: FOO bar
        S: 500 5.5.2 command not recognized
        C: QUIT
        S: 221 2.0.0 bye
        """
    )


def test_rejected_recipients_do_not_count_for_data() -> None:
    def policy(conn: ServerConnection, event: object) -> Reply | None:
        if isinstance(event, RcptTo):
            return Reply(code=550, status="5.1.1", text="no such user here")
        from .dialogue import permissive

        return permissive(conn, event)  # type: ignore[arg-type]

    transcript(
        """
        S: 220 mx.example.test ESMTP Pochta
        C: HELO client.example
        S: 250 mx.example.test
        C: MAIL FROM:<>
        S: 250 2.0.0 OK
        C: RCPT TO:<nobody@example.test>
        S: 550 5.1.1 no such user here
        C: DATA
        S: 554 5.5.1 no valid recipients
        """,
        policy=policy,
    )


def test_ehlo_and_rset_end_a_transaction() -> None:
    dialogue = converse(
        [
            b"EHLO a.example\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@example.test>\r\n"
            b"EHLO a.example\r\nRCPT TO:<b@example.test>\r\nMAIL FROM:<a@a.example>\r\nRSET\r\n"
            b"RCPT TO:<b@example.test>\r\n"
        ]
    )
    assert [line[:3] for line in dialogue.replies] == [
        "220", "250", "250", "250", "250", "503", "250", "250", "503",
    ]  # fmt: skip


def test_pipelined_commands_are_answered_in_order() -> None:
    data = (
        b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<x@example.test>\r\n"
        b"RCPT TO:<bad address>\r\nRCPT TO:<y@example.test>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n"
    )
    dialogue = converse([data])
    assert [line[:3] for line in dialogue.replies] == [
        "220", "250", "250", "250", "501", "250", "354", "250", "221",
    ]  # fmt: skip
    conn = ServerConnection(hostname="mx.example.test")
    conn.send(Reply(code=220, text="hi"))
    conn.receive_data(data)
    assert isinstance(conn.next_event(), Ehlo)
    assert isinstance(conn.next_event(), Paused)  # nothing more until the EHLO is answered
    conn.send(conn.ehlo_reply())
    assert isinstance(conn.next_event(), MailFrom)


def test_bare_lf_ends_a_command_line() -> None:
    dialogue = converse([b"EHLO c.example\nNOOP\r\n"])
    assert [line[:3] for line in dialogue.replies] == ["220", "250", "250"]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"NO\x00OP\r\n", replies.CONTROL_CHARACTER),
        (b"NOOP \xff\xfe\r\n", replies.NOT_UTF8),
        (b"NO\rOP\r\n", replies.CONTROL_CHARACTER),
        (b"\r\n", replies.UNKNOWN_COMMAND),
    ],
)
def test_bad_bytes_are_invalid_commands(line: bytes, reply: Reply) -> None:
    dialogue = converse([line])
    assert dialogue.events[0] == InvalidCommand(reply=reply)


def test_over_long_line_is_refused_and_skipped_to_its_end() -> None:
    limits = Limits(max_command_line=64)
    long_line = b"MAIL FROM:<" + b"a" * 200 + b"@example.test>\r\n"
    for packets in ([long_line + b"NOOP\r\n"], [bytes([octet]) for octet in long_line + b"NOOP\r\n"]):
        conn = ServerConnection(hostname="mx.example.test", limits=limits)
        dialogue = converse(packets, conn=conn)
        assert dialogue.replies == ["220 mx.example.test ESMTP Pochta", "500 5.5.2 line too long", "250 2.0.0 OK"]


def test_line_length_limit_counts_the_crlf() -> None:
    limits = Limits(max_command_line=8)
    conn = ServerConnection(hostname="mx.example.test", limits=limits)
    assert converse([b"NOOP 1\r\nNOOP 12\r\n"], conn=conn).replies[1:] == [
        "250 2.0.0 OK",
        "500 5.5.2 line too long",
    ]


def test_too_many_recipients() -> None:
    conn = ServerConnection(hostname="mx.example.test", limits=Limits(max_recipients=2))
    data = b"HELO c\r\nMAIL FROM:<>\r\n" + b"RCPT TO:<u@example.test>\r\n" * 3
    dialogue = converse([data], conn=conn)
    assert dialogue.replies[-1] == "452 4.5.3 too many recipients"
    assert conn.recipient_count == 2
    assert conn.error_count == 0


def test_too_many_errors_closes_with_421() -> None:
    conn = ServerConnection(hostname="mx.example.test", limits=Limits(max_errors=3))
    dialogue = converse([b"BAD\r\n" * 5], conn=conn)
    assert dialogue.replies[1:] == ["500 5.5.2 command not recognized"] * 3 + [
        "421 4.7.0 too many errors, closing connection"
    ]
    assert conn.state is State.CLOSED
    assert isinstance(dialogue.events[-1], ConnectionClosed)


def test_554_greeting_serves_only_quit() -> None:
    dialogue = converse([b"EHLO c.example\r\nQUIT\r\n"], greeting=Reply(code=554, status="5.7.1", text="no service"))
    assert dialogue.replies == ["554 5.7.1 no service", "503 5.5.1 bad sequence of commands", "221 2.0.0 bye"]


def test_eof_mid_line_closes() -> None:
    dialogue = converse([b"EHLO c.example\r\nMAIL FR"])
    assert isinstance(dialogue.events[-1], ConnectionClosed)


def test_extensions_can_be_turned_off() -> None:
    extensions = Extensions(pipelining=False, size=False, chunking=False, dsn=False, smtputf8=False)
    conn = ServerConnection(hostname="mx.example.test", extensions=extensions)
    dialogue = converse([b"EHLO c\r\nMAIL FROM:<a@c.example> RET=FULL\r\n"], conn=conn)
    assert "250-8BITMIME" in dialogue.written.decode()
    assert "CHUNKING" not in dialogue.written.decode()
    assert dialogue.replies[-1] == "555 5.5.4 RET parameter not recognized"


class TestOurMistakesRaise:
    def test_reply_before_any_command(self) -> None:
        conn = ServerConnection(hostname="mx.example.test")
        conn.send(Reply(code=220, text="hi"))
        with pytest.raises(LocalProtocolError):
            conn.send(replies.OK)

    def test_wrong_positive_code(self) -> None:
        conn = ServerConnection(hostname="mx.example.test")
        with pytest.raises(LocalProtocolError):
            conn.send(replies.OK)  # the greeting is 220
        conn.send(Reply(code=220, text="hi"))
        conn.receive_data(b"HELO c\r\n")
        conn.next_event()
        with pytest.raises(LocalProtocolError):
            conn.send(replies.DATA_GO_AHEAD)

    def test_quit_needs_221(self) -> None:
        conn = ServerConnection(hostname="mx.example.test")
        conn.send(Reply(code=220, text="hi"))
        conn.receive_data(b"QUIT\r\n")
        conn.next_event()
        with pytest.raises(LocalProtocolError):
            conn.send(replies.OK)

    def test_ehlo_reply_without_ehlo(self) -> None:
        with pytest.raises(LocalProtocolError):
            ServerConnection(hostname="mx.example.test").ehlo_reply()

    def test_data_after_eof(self) -> None:
        conn = ServerConnection(hostname="mx.example.test")
        conn.receive_data(b"")
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"x")

    def test_unsolicited_421_is_allowed_and_closes(self) -> None:
        conn = ServerConnection(hostname="mx.example.test")
        conn.send(Reply(code=220, text="hi"))
        assert conn.send(Reply(code=421, status="4.4.2", text="timeout")) == b"421 4.4.2 timeout\r\n"
        assert isinstance(conn.next_event(), ConnectionClosed)
        with pytest.raises(LocalProtocolError):
            conn.send(replies.OK)


def test_nothing_happens_before_the_greeting() -> None:
    conn = ServerConnection(hostname="mx.example.test")
    conn.receive_data(b"EHLO early.example\r\n")
    assert isinstance(conn.next_event(), Paused)
    conn.send(Reply(code=220, text="hi"))
    assert conn.next_event() == Ehlo(name="early.example", is_extended=True)
    conn.send(conn.ehlo_reply())
    assert isinstance(conn.next_event(), NeedData)
