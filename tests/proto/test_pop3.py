"""The POP3 server core: every command in every state, whole and one octet at a time, and fuzzed."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.proto.pop3 import (
    Auth,
    AuthCancelled,
    AuthResponse,
    Capa,
    Code,
    ConnectionClosed,
    Continuation,
    Dele,
    DotStuffer,
    Event,
    InvalidCommand,
    Limits,
    List,
    LocalProtocolError,
    NeedData,
    Noop,
    Pass,
    Paused,
    Quit,
    Reply,
    Retr,
    Rset,
    ServerConnection,
    Stat,
    State,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
    error,
    ok,
)

GREETING = ok("pop.example.test POP3 server ready")
MESSAGE = b"Subject: hi\r\n\r\nline one\r\n.dot line\r\nline three\r\n"


def _new(**kwargs: object) -> ServerConnection:
    options: dict[str, object] = {"is_loopback": True, "is_stls_offered": True}
    options.update(kwargs)
    return ServerConnection(**options)  # type: ignore[arg-type]


def permissive(conn: ServerConnection, event: Event) -> bytes:
    """A server with two messages, where every password is right and AUTH needs one challenge."""
    match event:
        case Capa():
            return conn.send(conn.capa_reply())
        case User() | Noop() | Dele() | Utf8() | Stls():
            return conn.send(ok())
        case Pass(password=password):
            return conn.send(ok("logged in") if password != "wrong" else error("bad", code=Code.AUTH))
        case Auth(initial_response=None):
            return conn.send(Continuation(data=b""))
        case Auth() | AuthResponse():
            return conn.send(ok("logged in"))
        case AuthCancelled():
            return conn.send(error("cancelled"))
        case Stat():
            return conn.send(ok("2 320"))
        case List(msg=None) | Uidl(msg=None):
            return conn.send(ok(lines=("1 120", "2 200")))
        case List(msg=msg) | Uidl(msg=msg):
            return conn.send(ok(f"{msg} 120") if msg in (1, 2) else error("no such message"))
        case Retr() | Top():
            head = conn.send(ok("message follows"))
            return head + conn.send_body(MESSAGE[:20]) + conn.send_body(MESSAGE[20:]) + conn.end_body()
        case Rset():
            return conn.send(ok("maildrop has 2 messages"))
        case Quit():
            return conn.send(ok("bye"))
        case InvalidCommand(reply=reply):
            return conn.send(reply)
        case _:
            raise AssertionError(f"unexpected {event!r}")


Policy = Callable[[ServerConnection, Event], bytes]


@dataclass
class Dialogue:
    conn: ServerConnection
    events: list[Event] = field(default_factory=list)
    written: bytearray = field(default_factory=bytearray)


def converse(
    packets: list[bytes | None], *, conn: ServerConnection, policy: Policy = permissive, eof: bool = True
) -> Dialogue:
    """Greet, feed each packet (None: the TLS handshake finished) and answer every event."""
    dialogue = Dialogue(conn)
    dialogue.written += conn.send(GREETING)
    for packet in packets:
        if packet is None:
            conn.tls_established()
            _drain(dialogue, policy)
            continue
        if conn.state is State.CLOSED:
            break
        conn.receive_data(packet)
        _drain(dialogue, policy)
    if eof and conn.state is not State.CLOSED:
        conn.receive_data(b"")
        _drain(dialogue, policy)
    return dialogue


def _drain(dialogue: Dialogue, policy: Policy) -> None:
    conn = dialogue.conn
    while True:
        event = conn.next_event()
        if isinstance(event, NeedData | Paused):
            return
        dialogue.events.append(event)
        if isinstance(event, ConnectionClosed):
            return
        dialogue.written += policy(conn, event)


def bytewise(packets: list[bytes | None]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for packet in packets:
        out.extend([None] if packet is None else [bytes([octet]) for octet in packet])
    return out


def transcript(
    script: str, *, new_conn: Callable[[], ServerConnection] = _new, policy: Policy = permissive
) -> Dialogue:
    """``C:`` lines are sent, ``S:`` lines (after the greeting) must come back exactly; ``TLS`` marks the
    handshake. Run whole and one octet at a time: both must write the same and give the same events."""
    packets: list[bytes | None] = []
    client = bytearray()
    expected = bytearray(GREETING.to_bytes())
    for raw in script.strip().splitlines():
        line = raw.strip()
        if line == "TLS":
            packets += [bytes(client), None]
            client.clear()
        elif line == "C:" or line.startswith("C: "):
            client += line[3:].encode("utf-8") + b"\r\n"
        elif line == "S:" or line.startswith("S: "):
            expected += line[3:].encode("utf-8") + b"\r\n"
        elif line:
            raise ValueError(f"transcript line must start with C: or S: {line!r}")
    packets.append(bytes(client))
    whole = converse(packets, conn=new_conn(), policy=policy)
    octets = converse(bytewise(packets), conn=new_conn(), policy=policy)
    # lines compare without trailing spaces: the transcript cannot show the space of an empty "+ " challenge
    assert [x.rstrip() for x in whole.written.decode().splitlines()] == expected.decode().splitlines()
    assert octets.written == whole.written
    assert octets.events == whole.events
    return whole


# ---- whole sessions ---------------------------------------------------------------------------------


def test_a_whole_session_with_user_and_pass() -> None:
    dialogue = transcript(
        """
        C: USER alice@example.test
        S: +OK
        C: PASS secret words
        S: +OK logged in
        C: STAT
        S: +OK 2 320
        C: LIST
        S: +OK
        S: 1 120
        S: 2 200
        S: .
        C: LIST 2
        S: +OK 2 120
        C: UIDL
        S: +OK
        S: 1 120
        S: 2 200
        S: .
        C: UIDL 1
        S: +OK 1 120
        C: RETR 1
        S: +OK message follows
        S: Subject: hi
        S:
        S: line one
        S: ..dot line
        S: line three
        S: .
        C: TOP 1 0
        S: +OK message follows
        S: Subject: hi
        S:
        S: line one
        S: ..dot line
        S: line three
        S: .
        C: DELE 1
        S: +OK
        C: NOOP
        S: +OK
        C: RSET
        S: +OK maildrop has 2 messages
        C: QUIT
        S: +OK bye
        """
    )
    commands = [e for e in dialogue.events if not isinstance(e, ConnectionClosed)]
    assert commands == [
        User(name="alice@example.test"),
        Pass(user="alice@example.test", password="secret words"),
        Stat(),
        List(msg=None),
        List(msg=2),
        Uidl(msg=None),
        Uidl(msg=1),
        Retr(msg=1),
        Top(msg=1, lines=0),
        Dele(msg=1),
        Noop(),
        Rset(),
        Quit(),
    ]
    assert dialogue.conn.state is State.CLOSED


def test_keywords_are_case_insensitive_and_bare_lf_is_tolerated() -> None:
    conn = _new()
    dialogue = converse([b"user a@b.example\npass x\r\nstat\nQuit\n"], conn=conn)
    assert [type(e) for e in dialogue.events] == [User, Pass, Stat, Quit, ConnectionClosed]


def test_quit_in_transaction_enters_update_until_answered() -> None:
    conn = _new()
    conn.send(GREETING)
    conn.receive_data(b"USER a\r\nPASS b\r\nQUIT\r\nNOOP\r\n")
    assert isinstance(conn.next_event(), User)
    conn.send(ok())
    assert isinstance(conn.next_event(), Pass)
    conn.send(ok())
    assert isinstance(conn.next_event(), Quit)
    assert conn.state is State.UPDATE
    assert isinstance(conn.next_event(), Paused)
    assert conn.send(error("some deleted messages not removed", code=Code.SYS_TEMP)).startswith(b"-ERR [SYS/TEMP]")
    assert conn.state is State.CLOSED
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_quit_before_login_closes() -> None:
    dialogue = transcript(
        """
        C: QUIT
        S: +OK bye
        """
    )
    assert dialogue.conn.state is State.CLOSED


def test_pipelined_commands_wait_for_their_turn() -> None:
    conn = _new()
    conn.send(GREETING)
    conn.receive_data(b"USER a\r\nPASS b\r\nSTAT\r\nLIST\r\n")
    assert conn.next_event() == User(name="a")
    assert isinstance(conn.next_event(), Paused)
    conn.send(ok())
    assert conn.next_event() == Pass(user="a", password="b")
    conn.send(ok())
    assert conn.next_event() == Stat()


# ---- authorization ----------------------------------------------------------------------------------


def test_pass_needs_a_user_just_before() -> None:
    transcript(
        """
        C: PASS secret
        S: -ERR send USER first
        C: USER alice
        S: +OK
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: USER
        S: SASL SCRAM-SHA-256 PLAIN LOGIN
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: UIDL
        S: UTF8 USER
        S: STLS
        S: IMPLEMENTATION Pochta
        S: .
        C: PASS secret
        S: -ERR send USER first
        C: USER
        S: -ERR USER needs a name
        """
    )


def test_a_failed_pass_returns_to_authorization_and_three_close_the_connection() -> None:
    dialogue = transcript(
        """
        C: USER alice
        S: +OK
        C: PASS wrong
        S: -ERR [AUTH] bad
        C: STAT
        S: -ERR log in first
        C: USER alice
        S: +OK
        C: PASS wrong
        S: -ERR [AUTH] bad
        C: USER alice
        S: +OK
        C: PASS wrong
        S: -ERR [AUTH] bad
        C: USER alice
        """
    )
    assert dialogue.conn.state is State.CLOSED
    assert dialogue.conn.auth_failures == 3


def test_plaintext_login_is_refused_without_tls_or_loopback() -> None:
    transcript(
        """
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: SASL SCRAM-SHA-256
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: UIDL
        S: UTF8 USER
        S: STLS
        S: IMPLEMENTATION Pochta
        S: .
        C: USER alice
        S: -ERR [AUTH] plaintext authentication needs TLS: use STLS or port 995
        C: PASS secret
        S: -ERR [AUTH] plaintext authentication needs TLS: use STLS or port 995
        C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
        S: -ERR [AUTH] plaintext authentication needs TLS: use STLS or port 995
        C: AUTH SCRAM-SHA-256
        S: +
        C: *
        S: -ERR cancelled
        """,
        new_conn=lambda: _new(is_loopback=False),
    )


def test_stls_discards_pipelined_plaintext_and_then_allows_plaintext_login() -> None:
    dialogue = transcript(
        """
        C: STLS
        S: +OK
        C: USER injected
        TLS
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: USER
        S: SASL SCRAM-SHA-256 PLAIN LOGIN
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: UIDL
        S: UTF8 USER
        S: IMPLEMENTATION Pochta
        S: .
        C: STLS
        S: -ERR TLS is already active
        C: USER alice
        S: +OK
        """,
        new_conn=lambda: _new(is_loopback=False),
    )
    assert User(name="injected") not in dialogue.events
    assert dialogue.conn.is_tls


def test_stls_when_not_offered_and_after_login() -> None:
    transcript(
        """
        C: STLS
        S: -ERR STLS not available
        C: USER a
        S: +OK
        C: PASS b
        S: +OK logged in
        C: STLS
        S: -ERR not allowed after login
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: UIDL
        S: IMPLEMENTATION Pochta
        S: .
        """,
        new_conn=lambda: _new(is_stls_offered=False),
    )


def test_eof_while_waiting_for_tls_closes() -> None:
    conn = _new()
    conn.send(GREETING)
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() == Stls()
    conn.send(ok())
    conn.receive_data(b"more plaintext\r\n")
    assert isinstance(conn.next_event(), Paused)
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_auth_with_initial_response_empty_initial_response_and_challenges() -> None:
    plain = base64.b64encode(b"\x00alice\x00secret").decode()
    dialogue = transcript(
        f"""
        C: AUTH PLAIN {plain}
        S: +OK logged in
        """
    )
    assert Auth(mechanism="PLAIN", initial_response=b"\x00alice\x00secret") in dialogue.events
    dialogue = transcript(
        """
        C: auth scram-sha-256 =
        S: +OK logged in
        """
    )
    assert Auth(mechanism="SCRAM-SHA-256", initial_response=b"") in dialogue.events
    dialogue = transcript(
        """
        C: AUTH LOGIN
        S: +
        C: YWxpY2U=
        S: +OK logged in
        C: STAT
        S: +OK 2 320
        """
    )
    assert AuthResponse(data=b"alice") in dialogue.events


def test_auth_mistakes() -> None:
    dialogue = transcript(
        """
        C: AUTH
        S: -ERR AUTH needs a mechanism and at most an initial response
        C: AUTH CRAM-MD5
        S: -ERR unknown SASL mechanism
        C: AUTH PLAIN !!!
        S: -ERR invalid base64
        C: AUTH PLAIN a b
        S: -ERR AUTH needs a mechanism and at most an initial response
        C: AUTH LOGIN
        S: +
        C: not base64!
        S: -ERR invalid base64
        C: AUTH LOGIN
        S: +
        C: *
        S: -ERR cancelled
        C: STAT
        S: -ERR log in first
        """
    )
    assert dialogue.conn.auth_failures == 0


def test_auth_response_with_a_control_character_fails_the_exchange() -> None:
    transcript(
        """
        C: AUTH LOGIN
        S: +
        C: YWxp\x00Y2U=
        S: -ERR control character in command
        C: CAPA x
        S: -ERR CAPA takes no argument
        """
    )


def test_auth_continuation_may_be_longer_than_a_command() -> None:
    long = base64.b64encode(b"x" * 3000).decode()
    conn = _new(limits=Limits(max_command_line=255, max_auth_line=8192))
    dialogue = converse([f"USER {'u' * 300}\r\nAUTH PLAIN {long}\r\n".encode()], conn=conn)
    assert isinstance(dialogue.events[1], Auth)
    assert dialogue.written.decode().splitlines()[1:] == ["-ERR line too long", "+OK logged in"]


def test_apop_is_not_offered_and_utf8_is() -> None:
    dialogue = transcript(
        """
        C: APOP alice 0123456789abcdef0123456789abcdef
        S: -ERR APOP not available, use USER/PASS or AUTH
        C: UTF8
        S: +OK
        C: USER zoë@exämple.test
        S: +OK
        C: PASS grüße
        S: +OK logged in
        C: UTF8
        S: -ERR not allowed after login
        """
    )
    assert dialogue.conn.is_utf8
    assert Pass(user="zoë@exämple.test", password="grüße") in dialogue.events


def test_transaction_commands_before_login_and_login_commands_after() -> None:
    lines = "\n".join(f"C: {verb}\nS: -ERR log in first" for verb in ("STAT", "LIST", "RETR 1", "DELE 1"))
    lines += "\n" + "\n".join(f"C: {verb}\nS: -ERR log in first" for verb in ("NOOP", "RSET", "TOP 1 1", "UIDL"))
    transcript(lines)
    transcript(
        """
        C: USER a
        S: +OK
        C: PASS b
        S: +OK logged in
        C: USER a
        S: -ERR not allowed after login
        C: PASS b
        S: -ERR not allowed after login
        C: AUTH PLAIN
        S: -ERR not allowed after login
        C: APOP a b
        S: -ERR not allowed after login
        """
    )


# ---- malformed commands -----------------------------------------------------------------------------

LOGGED_IN = """
    C: USER a
    S: +OK
    C: PASS b
    S: +OK logged in
"""


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("LIST x", "-ERR invalid message number"),
        ("LIST 1 2", "-ERR LIST takes at most one message number"),
        ("LIST -1", "-ERR invalid message number"),
        ("LIST 0", "-ERR no such message"),
        ("LIST ²", "-ERR invalid message number"),
        ("LIST 3", "-ERR no such message"),
        ("UIDL 1 2", "-ERR UIDL takes at most one message number"),
        ("RETR", "-ERR RETR needs a message number"),
        ("RETR 1 2", "-ERR RETR needs a message number"),
        ("RETR 99999999999999999999", "-ERR invalid message number"),
        ("DELE", "-ERR DELE needs a message number"),
        ("TOP 1", "-ERR TOP needs a message number and a number of lines"),
        ("TOP 1 x", "-ERR invalid number of lines"),
        ("TOP 1 -1", "-ERR invalid number of lines"),
        ("STAT 1", "-ERR STAT takes no argument"),
        ("NOOP now", "-ERR NOOP takes no argument"),
        ("RSET all", "-ERR RSET takes no argument"),
        ("QUIT now", "-ERR QUIT takes no argument"),
        ("", "-ERR unknown command"),
        ("XYZZY", "-ERR unknown command"),
        ("RETR\t1", "-ERR unknown command"),
    ],
)
def test_malformed_commands_get_a_reason_and_the_session_goes_on(command: str, reply: str) -> None:
    transcript(
        f"""
        {LOGGED_IN}
        C: {command}
        S: {reply}
        C: NOOP
        S: +OK
        """
    )


def test_lenient_spacing_between_arguments() -> None:
    dialogue = transcript(
        f"""
        {LOGGED_IN}
        C: TOP  1   5
        S: +OK message follows
        S: Subject: hi
        S:
        S: line one
        S: ..dot line
        S: line three
        S: .
        """
    )
    assert Top(msg=1, lines=5) in dialogue.events


def test_bytes_that_are_not_commands() -> None:
    conn = _new(limits=Limits(max_command_line=64, max_auth_line=64))
    dialogue = converse(
        [b"NOOP\x00\r\n", b"\xff\xfe\r\n", b"x" * 100 + b"\r\n", b"y" * 50, b"y" * 50 + b"\r\nQUIT\r\n"], conn=conn
    )
    assert dialogue.written.decode(errors="replace").splitlines()[1:] == [
        "-ERR control character in command",
        "-ERR command is not UTF-8",
        "-ERR line too long",
        "-ERR line too long",
        "+OK bye",
    ]


def test_too_many_errors_close_the_connection() -> None:
    conn = _new(limits=Limits(max_errors=3))
    dialogue = converse([b"BAD\r\n" * 5], conn=conn)
    assert dialogue.written.decode().splitlines()[1:] == [
        "-ERR unknown command",
        "-ERR unknown command",
        "-ERR unknown command",
        "-ERR too many bad commands, closing connection",
    ]
    assert conn.state is State.CLOSED
    assert isinstance(dialogue.events[-1], ConnectionClosed)


def test_eof_in_the_middle_of_a_line_closes() -> None:
    conn = _new()
    dialogue = converse([b"USER a\r\nPASS"], conn=conn)
    assert isinstance(dialogue.events[-1], ConnectionClosed)
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_a_refused_greeting_closes() -> None:
    conn = _new()
    assert conn.send(error("too busy", code=Code.SYS_TEMP)) == b"-ERR [SYS/TEMP] too busy\r\n"
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_unsolicited_close_on_shutdown() -> None:
    conn = _new()
    conn.send(GREETING)
    assert conn.close(error("shutting down", code=Code.SYS_TEMP)) == b"-ERR [SYS/TEMP] shutting down\r\n"
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert conn.close(error("again")) == b""


# ---- our own mistakes ------------------------------------------------------------------------------


def test_misuse_by_the_application_raises() -> None:
    conn = _new()
    conn.send(GREETING)
    with pytest.raises(LocalProtocolError):
        conn.send(ok())  # nothing to answer
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"x")
    with pytest.raises(LocalProtocolError):
        conn.end_body()
    with pytest.raises(LocalProtocolError):
        conn.capa_reply()
    with pytest.raises(LocalProtocolError):
        conn.tls_established()
    conn.receive_data(b"CAPA\r\nUSER a\r\nPASS b\r\nLIST\r\nBAD\r\n")
    assert isinstance(conn.next_event(), Capa)
    with pytest.raises(LocalProtocolError):
        conn.send(ok())  # CAPA needs its lines
    with pytest.raises(LocalProtocolError):
        conn.send(Continuation(data=b""))
    conn.send(conn.capa_reply())
    assert isinstance(conn.next_event(), User)
    with pytest.raises(LocalProtocolError):
        conn.send(ok(lines=()))
    conn.send(ok())
    conn.next_event()
    conn.send(ok())
    assert conn.next_event() == List(msg=None)
    with pytest.raises(LocalProtocolError):
        conn.send(ok("2 messages"))
    conn.send(ok(lines=()))
    assert isinstance(conn.next_event(), InvalidCommand)
    with pytest.raises(LocalProtocolError):
        conn.send(ok())


def test_replies_are_checked() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        ok("two\r\nlines")
    with pytest.raises(ValueError, match="CR or LF"):
        ok(lines=("a\nb",))
    with pytest.raises(ValueError, match="-ERR"):
        Reply(is_ok=True, code=Code.IN_USE)
    assert error("busy", code=Code.IN_USE).to_bytes() == b"-ERR [IN-USE] busy\r\n"
    assert ok().to_bytes() == b"+OK\r\n"
    assert ok("x", lines=(".hidden", "")).to_bytes() == b"+OK x\r\n..hidden\r\n\r\n.\r\n"
    assert Continuation(data=b"").to_bytes() == b"+ \r\n"
    assert Continuation(data=b"r=abc").to_bytes() == b"+ cj1hYmM=\r\n"


# ---- byte-stuffing ---------------------------------------------------------------------------------


def _stuff(chunks: list[bytes]) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.feed(chunk) for chunk in chunks) + stuffer.end()


def _unstuff(data: bytes) -> bytes:
    """What a client reads: lines up to the lone ".", with one leading dot removed."""
    assert data.endswith(b"\r\n.\r\n") or data == b".\r\n"
    lines = data.split(b"\r\n")[:-2]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"..x\r\n", b"...x\r\n.\r\n"),
        (b"no line ending", b"no line ending\r\n.\r\n"),
        (b"a\n.b\n", b"a\r\n..b\r\n.\r\n"),
        (b"ends in cr\r", b"ends in cr\r\n.\r\n"),
        (b"x.\r\n y.", b"x.\r\n y.\r\n.\r\n"),
    ],
)
def test_dot_stuffing(message: bytes, expected: bytes) -> None:
    assert _stuff([message]) == expected
    assert _stuff([bytes([octet]) for octet in message]) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"..", b"\r\n.\r\n"]), max_size=30), st.data())
def test_dot_stuffing_does_not_depend_on_chunking_and_round_trips(parts: list[bytes], data: st.DataObject) -> None:
    message = b"".join(parts)
    whole = _stuff([message])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(message)), max_size=6)))
    chunks = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
    assert _stuff(chunks) == whole
    normalised = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if normalised and not normalised.endswith(b"\n"):
        normalised += b"\n" if normalised.endswith(b"\r") else b"\r\n"
    if b"\r" not in normalised.replace(b"\r\n", b""):
        assert _unstuff(whole) == normalised


# ---- fuzzing ---------------------------------------------------------------------------------------

COMMANDS = [
    b"USER a\r\n", b"PASS b\r\n", b"PASS wrong\r\n", b"AUTH PLAIN\r\n", b"AUTH LOGIN YQ==\r\n", b"*\r\n",
    b"STLS\r\n", b"CAPA\r\n", b"STAT\r\n", b"LIST\r\n", b"LIST 1\r\n", b"RETR 1\r\n", b"TOP 1 2\r\n",
    b"DELE 1\r\n", b"UIDL\r\n", b"UIDL 9\r\n", b"RSET\r\n", b"NOOP\r\n", b"UTF8\r\n", b"QUIT\r\n",
    b"\r", b"\n", b".", b"\x00", b"\xff", b"x" * 70,
]  # fmt: skip
pieces = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(COMMANDS)), max_size=30)


def _fuzz_conn() -> ServerConnection:
    return _new(limits=Limits(max_command_line=64, max_auth_line=96, max_errors=1000, max_auth_failures=1000))


@settings(max_examples=300, deadline=None)
@given(pieces, st.lists(st.booleans(), max_size=30))
def test_arbitrary_bytes_give_only_events(data: list[bytes], tls_after: list[bool]) -> None:
    conn = _fuzz_conn()
    dialogue = Dialogue(conn)
    conn.send(GREETING)
    for index, packet in enumerate(data):
        if conn.state is State.CLOSED:
            break
        conn.receive_data(packet)
        _drain(dialogue, permissive)
        if index < len(tls_after) and tls_after[index] and conn.state is State.TLS:
            conn.tls_established()
            _drain(dialogue, permissive)
    if conn.state is not State.CLOSED:
        conn.receive_data(b"")
        _drain(dialogue, permissive)
    assert isinstance(conn.next_event(), ConnectionClosed)


@settings(max_examples=200, deadline=None)
@given(pieces)
def test_splitting_does_not_change_events(data: list[bytes]) -> None:
    packets: list[bytes | None] = [b"".join(data)]
    whole = converse(packets, conn=_fuzz_conn())
    octets = converse(bytewise(packets), conn=_fuzz_conn())
    assert octets.events == whole.events
    assert octets.written == whole.written
