"""The connection's state machine: states, literals, IDLE, AUTHENTICATE, STARTTLS, limits."""

import pytest

from pochta.proto.imap import (
    AuthCancelled,
    AuthResponse,
    Command,
    ConnectionClosed,
    Continuation,
    Done,
    InvalidCommand,
    Limits,
    LiteralStart,
    LocalProtocolError,
    NeedData,
    Paused,
    ServerConnection,
    State,
    Status,
    Tagged,
)
from pochta.proto.imap import (
    commands as c,
)
from pochta.proto.imap.responses import Condition, EnabledData, ExistsData, RecentData

from .dialogue import Transcript, bytewise, converse, drain, events_of, logged_in, refusal_of, selected


def ok(tag: str) -> Tagged:
    return Tagged(tag=tag, status=Status.OK, text="done")


# ---- states (RFC 9051 §3) -------------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"a SELECT INBOX", b'a LIST "" *', b"a FETCH 1 FLAGS", b"a ENABLE X", b"a IDLE"])
def test_not_authenticated_refuses_later_commands(line: bytes) -> None:
    refusal = refusal_of(line)
    assert refusal.reply == Tagged(tag="a", status=Status.BAD, text=refusal.reply.text)
    assert "NOT_AUTHENTICATED" in refusal.reply.text


@pytest.mark.parametrize(
    "line", [b"a LOGIN u p", b"a FETCH 1 FLAGS", b"a UID STORE 1 FLAGS ()", b"a CLOSE", b"a STARTTLS"]
)
def test_authenticated_refuses(line: bytes) -> None:
    assert refusal_of(line, logged_in).reply.status is Status.BAD


def test_enable_only_before_select() -> None:
    assert refusal_of(b"a ENABLE CONDSTORE", selected).reply.status is Status.BAD  # RFC 9051 §6.3.1


def test_login_select_close_logout_move_the_state() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a LOGIN u p\r\n")
    event = conn.next_event()
    assert isinstance(event, Command)
    assert conn.next_event() == Paused()  # one command at a time
    assert conn.state is State.NOT_AUTHENTICATED
    conn.send(ok("a"))
    assert conn.state is State.AUTHENTICATED
    conn.receive_data(b"b SELECT INBOX\r\nc SELECT nothere\r\nd CLOSE\r\n")
    conn.next_event()
    conn.send(ok("b"))
    assert conn.state is State.SELECTED
    conn.next_event()
    conn.send(Tagged(tag="c", status=Status.NO, text="no such mailbox"))
    assert conn.state is State.AUTHENTICATED  # RFC 9051 §6.3.2: a failed SELECT closes the mailbox
    assert isinstance(conn.next_event(), InvalidCommand)  # CLOSE needs a selected mailbox
    conn.send(Tagged(tag="d", status=Status.BAD, text="no"))
    conn.receive_data(b"e LOGOUT\r\n")
    conn.next_event()
    assert conn.send(Condition(status=Status.BYE, text="bye")) == b"* BYE bye\r\n"
    assert conn.send(ok("e")) == b"e OK done\r\n"
    assert conn.state is State.LOGOUT
    assert conn.next_event() == ConnectionClosed()


def test_failed_login_stays_not_authenticated() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a LOGIN u p\r\n")
    conn.next_event()
    conn.send(Tagged(tag="a", status=Status.NO, text="[AUTHENTICATIONFAILED] no"))
    assert conn.state is State.NOT_AUTHENTICATED


def test_preauth_greeting() -> None:
    conn = ServerConnection()
    conn.send(Condition(status=Status.PREAUTH, text="welcome"))
    assert conn.state is State.AUTHENTICATED


def test_unsolicited_bye_closes() -> None:
    conn = logged_in()
    conn.send(Condition(status=Status.BYE, text="shutting down"))
    assert conn.next_event() == ConnectionClosed()


def test_application_misuse_raises() -> None:
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(ok("x"))
    with pytest.raises(LocalProtocolError):
        conn.send(Continuation())
    conn.receive_data(b"a NOOP\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(ok("b"))
    with pytest.raises(LocalProtocolError):
        conn.send(Continuation())


def test_no_recent_for_rev2() -> None:
    conn = selected()
    assert conn.send(RecentData(count=1)) == b"* 1 RECENT\r\n"
    conn.enable("IMAP4rev2")
    with pytest.raises(LocalProtocolError):
        conn.send(RecentData(count=1))


def test_untagged_data_any_time() -> None:
    conn = selected()
    assert conn.send(ExistsData(count=3)) == b"* 3 EXISTS\r\n"


def test_enabled_response_enables() -> None:
    conn = logged_in()
    conn.receive_data(b"a ENABLE UTF8=ACCEPT\r\n")
    conn.next_event()
    conn.send(EnabledData(capabilities=("UTF8=ACCEPT",)))
    conn.send(ok("a"))
    assert conn.is_utf8
    conn.receive_data('b CREATE "Entwürfe"\r\n'.encode())
    assert conn.next_event() == Command(tag="b", command=c.Create(mailbox="Entwürfe"))


# ---- tags and errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"", b"NOOP", b"+a NOOP", b"* NOOP", b"(x NOOP", b" a NOOP"])
def test_missing_tag_is_untagged_bad(line: bytes) -> None:
    refusal = refusal_of(line)
    assert refusal.tag is None
    assert isinstance(refusal.reply, Condition) and refusal.reply.status is Status.BAD


def test_untagged_bad_is_sent_as_star() -> None:
    transcript = converse([b"NOOP\r\na NOOP\r\n"], eof=False)
    assert transcript.output.startswith(b"* BAD ")
    assert transcript.output.endswith(b"a OK done\r\n")


def test_odd_tags() -> None:
    assert events_of(b"A.1-x] NOOP\r\n")[0] == Command(tag="A.1-x]", command=c.Noop())


def test_too_many_errors_are_fatal() -> None:
    conn = ServerConnection(limits=Limits(max_errors=3))
    transcript = converse([b"a FROB\r\n" * 5], conn=conn)
    refusals = [event for event in transcript.events if isinstance(event, InvalidCommand)]
    assert [refusal.is_fatal for refusal in refusals] == [False, False, True]
    assert transcript.output.endswith(b"* BYE too many errors\r\n")
    assert conn.next_event() == ConnectionClosed()


def test_long_line_is_bad_and_the_session_goes_on() -> None:
    limits = Limits(max_command=100, max_errors=100)
    data = b"a1 LOGIN " + b"x" * 500 + b" y\r\na2 NOOP\r\n"
    for packets in ([data], bytewise(data)):
        transcript = converse(packets, conn=ServerConnection(limits=limits), eof=False)
        assert transcript.events[0] == InvalidCommand(
            tag="a1", reply=Tagged(tag="a1", status=Status.BAD, text="command line too long")
        )
        assert transcript.events[1] == Command(tag="a2", command=c.Noop())


def test_long_line_ending_in_a_nonsync_literal_drops_the_literal() -> None:
    limits = Limits(max_command=100, max_errors=100)
    data = b"a1 LOGIN " + b"x" * 500 + b" {10+}\r\n0123456789\r\na2 NOOP\r\n"
    for packets in ([data], bytewise(data)):
        transcript = converse(packets, conn=ServerConnection(limits=limits), eof=False)
        assert [type(event) for event in transcript.events] == [InvalidCommand, Command]


def test_eof_closes() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a NO")
    assert conn.next_event() == NeedData()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")


def test_bare_lf_is_tolerated() -> None:
    assert events_of(b"a NOOP\n") == [Command(tag="a", command=c.Noop())]


# ---- literals (RFC 9051 §4.3, §7.5; RFC 7888) -------------------------------------------------------


def test_synchronising_literal_waits_for_continuation() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a LOGIN {4}\r\n")
    assert conn.next_event() == LiteralStart(tag="a", size=4)
    assert conn.next_event() == Paused()
    conn.receive_data(b"user")  # a client that does not wait: kept until the application answers
    assert conn.next_event() == Paused()
    assert conn.send(Continuation()) == b"+ Ready\r\n"
    conn.receive_data(b" pass\r\n")
    assert conn.next_event() == Command(tag="a", command=c.Login(user="user", password="pass"))


def test_refused_synchronising_literal_ends_the_command() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a LOGIN {4}\r\nb NOOP\r\n")
    assert conn.next_event() == LiteralStart(tag="a", size=4)
    assert conn.send(Tagged(tag="a", status=Status.NO, text="no literals for you")) == b"a NO no literals for you\r\n"
    assert conn.next_event() == Command(tag="b", command=c.Noop())


def test_literal_over_the_command_limit_is_refused_by_the_core() -> None:
    limits = Limits(max_command=100)
    assert refusal_of(b"a LOGIN {1000}", lambda: ServerConnection(limits=limits)).reply.text == "command too long"
    data = b"a LOGIN {1000+}\r\n" + b"x" * 1000 + b" y\r\nb NOOP\r\n"
    events = events_of(data, lambda: ServerConnection(limits=limits))
    assert [type(event) for event in events] == [InvalidCommand, Command]


def test_literal_minus_limits_nonsync_literals() -> None:
    limits = Limits(max_nonsync_literal=4096)  # RFC 7888 §5
    make = lambda: ServerConnection(limits=limits)  # noqa: E731
    assert events_of(b"a LOGIN {4096+}\r\n" + b"u" * 4096 + b" p\r\n", make)[0] == Command(
        tag="a", command=c.Login(user="u" * 4096, password="p")
    )
    events = events_of(b"a LOGIN {4097+}\r\n" + b"u" * 4097 + b" p\r\nb NOOP\r\n", make)
    assert isinstance(events[0], InvalidCommand) and events[0].reply.status is Status.BAD
    assert events[1] == Command(tag="b", command=c.Noop())
    assert isinstance(events_of(b"a LOGIN {5000}\r\n", make)[0], LiteralStart)  # synchronising: the app decides


def test_literal8_only_in_append() -> None:
    assert refusal_of(b"a LOGIN ~{4}").reply.status is Status.BAD


def test_literal_for_an_unknown_command_is_refused_at_once() -> None:
    assert refusal_of(b"a FROB {4}").reply.status is Status.BAD
    assert refusal_of(b"a SELECT {5}").reply.status is Status.BAD  # not authenticated


# ---- IDLE (RFC 2177) --------------------------------------------------------------------------------


def test_idle_done() -> None:
    conn = selected()
    conn.receive_data(b"i IDLE\r\n")
    assert conn.next_event() == Command(tag="i", command=c.Idle())
    assert conn.send(Continuation(text="idling")) == b"+ idling\r\n"
    assert conn.next_event() == NeedData()
    assert conn.send(ExistsData(count=4)) == b"* 4 EXISTS\r\n"
    conn.receive_data(b"do")
    assert conn.next_event() == NeedData()
    conn.receive_data(b"ne\r\n")
    assert conn.next_event() == Done(tag="i")
    assert conn.send(ok("i")) == b"i OK done\r\n"
    assert conn.next_event() == NeedData()


def test_idle_anything_but_done_is_bad() -> None:
    conn = selected()
    conn.receive_data(b"i IDLE\r\n")
    conn.next_event()
    conn.send(Continuation(text="idling"))
    conn.receive_data(b"a NOOP\r\nb NOOP\r\n")
    event = conn.next_event()
    assert isinstance(event, InvalidCommand) and event.tag == "i" and event.reply.status is Status.BAD
    conn.send(event.reply)
    assert conn.next_event() == Command(tag="b", command=c.Noop())


def test_idle_refused() -> None:
    conn = selected()
    conn.receive_data(b"i IDLE\r\n")
    conn.next_event()
    conn.send(Tagged(tag="i", status=Status.NO, text="no idling"))
    assert conn.next_event() == NeedData()


# ---- AUTHENTICATE (RFC 9051 §6.2.2, RFC 4959 SASL-IR) -----------------------------------------------


def test_authenticate_exchange() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    assert conn.next_event() == Command(tag="a", command=c.Authenticate(mechanism="PLAIN"))
    assert conn.send(Continuation(text="")) == b"+ \r\n"
    conn.receive_data(b"AHVzZXIAcGFzcw==\r\n")
    assert conn.next_event() == AuthResponse(tag="a", data=b"\x00user\x00pass")
    conn.send(ok("a"))
    assert conn.state is State.AUTHENTICATED


def test_authenticate_several_steps_and_cancel() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a AUTHENTICATE SCRAM-SHA-256\r\n\r\n*\r\n")
    conn.next_event()
    conn.send(Continuation(text=""))
    assert conn.next_event() == AuthResponse(tag="a", data=b"")
    conn.send(Continuation(text="cj1mb28="))
    assert conn.next_event() == AuthCancelled(tag="a")
    conn.send(Tagged(tag="a", status=Status.BAD, text="cancelled"))
    assert conn.state is State.NOT_AUTHENTICATED


def test_authenticate_bad_base64_ends_exchange() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n!!!\r\nb NOOP\r\n")
    conn.next_event()
    conn.send(Continuation(text=""))
    event = conn.next_event()
    assert isinstance(event, InvalidCommand) and event.tag == "a"
    conn.send(event.reply)
    assert conn.next_event() == Command(tag="b", command=c.Noop())


def test_authenticate_with_initial_response_whole_and_bytewise() -> None:
    events = events_of(b"a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\nb SELECT INBOX\r\n")
    assert events[1] == Command(tag="b", command=c.Select(mailbox="INBOX"))


# ---- STARTTLS (RFC 9051 §6.2.1) ---------------------------------------------------------------------


def test_starttls_drops_pipelined_plaintext() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a STARTTLS\r\nb LOGIN u p\r\n")
    assert conn.next_event() == Command(tag="a", command=c.StartTls())
    conn.send(ok("a"))
    assert conn.next_event() == Paused()
    conn.receive_data(b"c LOGIN injected p\r\n")
    assert conn.next_event() == Paused()
    conn.tls_established()
    assert conn.is_tls
    assert conn.next_event() == NeedData()
    conn.receive_data(b"d NOOP\r\n")
    assert conn.next_event() == Command(tag="d", command=c.Noop())


def test_eof_during_tls_handshake_closes() -> None:
    conn = ServerConnection()
    conn.receive_data(b"a STARTTLS\r\n")
    conn.next_event()
    conn.send(ok("a"))
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_pipelined_commands_byte_at_a_time() -> None:
    data = b'a LOGIN "u" {1}\r\np\r\nb SELECT INBOX\r\nc UID FETCH 1:* (FLAGS)\r\nd LOGOUT\r\n'
    whole = converse([data])
    octets = converse(bytewise(data))
    assert whole.events == octets.events
    assert whole.output == octets.output
    assert whole.output.endswith(b"* BYE bye\r\nd OK done\r\n")


def test_drain_helper_sees_everything() -> None:
    transcript = Transcript()
    conn = ServerConnection()
    conn.receive_data(b"a NOOP\r\n")
    assert drain(conn, transcript) == NeedData()
    assert transcript.output == b"a OK done\r\n"
