"""The ManageSieve server core: every command in every state, whole and one octet at a time, and fuzzed."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.proto.managesieve import (
    AuthCancelled,
    Authenticate,
    AuthResponse,
    Capability,
    Challenge,
    CheckScript,
    Code,
    ConnectionClosed,
    DeleteScript,
    Event,
    GetScript,
    HaveSpace,
    InvalidCommand,
    Limits,
    ListScripts,
    LocalProtocolError,
    Logout,
    NeedData,
    Noop,
    Paused,
    PutScript,
    RenameScript,
    ServerConnection,
    SetActive,
    StartTls,
    State,
    Unauthenticate,
    no,
    ok,
    quote,
    script_content,
    script_list,
)

EXTENSIONS = ("fileinto", "vacation")


def _new(**kwargs: object) -> ServerConnection:
    options: dict[str, object] = {"is_loopback": True, "is_starttls_offered": True}
    options.update(kwargs)
    return ServerConnection(**options)  # type: ignore[arg-type]


def _capabilities(conn: ServerConnection) -> bytes:
    owner = "alice@example.test" if conn.state is State.AUTHENTICATED else None
    return conn.send(conn.capability_reply(extensions=EXTENSIONS, max_redirects=4, owner=owner))


def permissive(conn: ServerConnection, event: Event) -> bytes:
    """A server where every password is right, PLAIN without an initial response takes one challenge,
    and the account has scripts "a" (active) and "b"."""
    match event:
        case Capability():
            return _capabilities(conn)
        case Authenticate(initial_response=None):
            return conn.send(Challenge(data=b""))
        case Authenticate() | AuthResponse():
            return conn.send(ok("logged in"))
        case AuthCancelled():
            return conn.send(no("cancelled"))
        case StartTls():
            return conn.send(ok("begin TLS negotiation"))
        case Logout():
            return conn.send(ok("bye"))
        case Noop(tag=tag):
            return conn.send(ok("done", code=Code.TAG, code_data=tag) if tag is not None else ok("done"))
        case Unauthenticate():
            return conn.send(ok())
        case HaveSpace(size=size):
            return conn.send(ok() if size <= 100 else no("too big", code=Code.QUOTA_MAXSIZE))
        case PutScript(source=source) | CheckScript(source=source):
            return conn.send(ok() if "bad" not in source else no("line 1:1: bad script"))
        case ListScripts():
            return conn.send(script_list([("a", True), ("b", False)]))
        case GetScript(name=name):
            return conn.send(script_content("keep;\r\n") if name in ("a", "b") else no("no", code=Code.NONEXISTENT))
        case SetActive() | DeleteScript() | RenameScript():
            return conn.send(ok())
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
    dialogue.written += _capabilities(conn)
    for packet in packets:
        if packet is None:
            conn.tls_established()
            dialogue.written += _capabilities(conn)  # RFC 5804 §2.2: capabilities again after TLS
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


GREETING = (
    b'"IMPLEMENTATION" "Pochta"\r\n"SIEVE" "fileinto vacation"\r\n"SASL" "SCRAM-SHA-256 PLAIN LOGIN"\r\n'
    b'"STARTTLS"\r\n"MAXREDIRECTS" "4"\r\n"UNAUTHENTICATE"\r\n"VERSION" "1.0"\r\nOK\r\n'
)


def run(packets: list[bytes | None], *, new_conn: Callable[[], ServerConnection] = _new) -> Dialogue:
    """Whole and one octet at a time: both must write the same and give the same events."""
    whole = converse(packets, conn=new_conn())
    octets = converse(bytewise(packets), conn=new_conn())
    assert octets.written == whole.written
    assert octets.events == whole.events
    return whole


PLAIN = base64.b64encode(b"\0alice@example.test\0secret").decode()


def _login() -> bytes:
    return f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode()


# ---- whole sessions ---------------------------------------------------------------------------------


def test_greeting_is_the_capability_listing() -> None:
    dialogue = run([b"LOGOUT\r\n"])
    assert bytes(dialogue.written) == GREETING + b'OK "bye"\r\n'
    assert dialogue.events == [Logout(), ConnectionClosed()]


def test_a_whole_session() -> None:
    script = b'require "fileinto";\r\nfileinto "Lists";\r\n'
    dialogue = run(
        [
            _login()
            + b"CAPABILITY\r\n"
            + b'HAVESPACE "main" 50\r\n'
            + b'PUTSCRIPT "main" {%d+}\r\n' % len(script)
            + script
            + b"\r\n"
            + b"LISTSCRIPTS\r\n"
            + b'SETACTIVE "main"\r\n'
            + b'GETSCRIPT "a"\r\n'
            + b'RENAMESCRIPT "main" "other"\r\n'
            + b'DELETESCRIPT "b"\r\n'
            + b'CHECKSCRIPT "keep;"\r\n'
            + b'NOOP "t1"\r\n'
            + b"UNAUTHENTICATE\r\n"
            + b"LOGOUT\r\n"
        ]
    )
    assert dialogue.events == [
        Authenticate(mechanism="PLAIN", initial_response=b"\0alice@example.test\0secret"),
        Capability(),
        HaveSpace(name="main", size=50),
        PutScript(name="main", source=script.decode()),
        ListScripts(),
        SetActive(name="main"),
        GetScript(name="a"),
        RenameScript(old="main", new="other"),
        DeleteScript(name="b"),
        CheckScript(source="keep;"),
        Noop(tag="t1"),
        Unauthenticate(),
        Logout(),
        ConnectionClosed(),
    ]
    after_login = bytes(dialogue.written)[len(GREETING) :]
    assert after_login == (
        b'OK "logged in"\r\n'
        b'"IMPLEMENTATION" "Pochta"\r\n"SIEVE" "fileinto vacation"\r\n"MAXREDIRECTS" "4"\r\n'
        b'"OWNER" "alice@example.test"\r\n"UNAUTHENTICATE"\r\n"VERSION" "1.0"\r\nOK\r\n'
        b"OK\r\n"
        b"OK\r\n"
        b'"a" ACTIVE\r\n"b"\r\nOK "listscripts completed"\r\n'
        b"OK\r\n"
        b'{7}\r\nkeep;\r\n\r\nOK "getscript completed"\r\n'
        b"OK\r\nOK\r\nOK\r\n"
        b'OK (TAG "t1") "done"\r\n'
        b"OK\r\n"
        b'OK "bye"\r\n'
    )


def test_sasl_exchange_with_literals_and_cancel() -> None:
    dialogue = run(
        [
            b'AUTHENTICATE "PLAIN"\r\n'
            + b'"*"\r\n'
            + b'AUTHENTICATE "plain"\r\n'
            + b"{%d+}\r\n" % len(PLAIN)
            + PLAIN.encode()
            + b"\r\n"
            + b"LISTSCRIPTS\r\n"
        ]
    )
    assert dialogue.events[:5] == [
        Authenticate(mechanism="PLAIN", initial_response=None),
        AuthCancelled(),
        Authenticate(mechanism="PLAIN", initial_response=None),
        AuthResponse(data=b"\0alice@example.test\0secret"),
        ListScripts(),
    ]
    assert bytes(dialogue.written)[len(GREETING) :].startswith(b'""\r\nNO "cancelled"\r\n""\r\nOK "logged in"\r\n')


def test_synchronising_literal_is_read_without_a_continuation() -> None:
    dialogue = run([_login() + b'PUTSCRIPT "x" {5}\r\nkeep;\r\n'])
    assert PutScript(name="x", source="keep;") in dialogue.events


def test_scripts_need_authentication() -> None:
    dialogue = run([b"LISTSCRIPTS\r\n", b'PUTSCRIPT "a" "keep;"\r\n', b"UNAUTHENTICATE\r\n", b"FROB\r\n"])
    replies = bytes(dialogue.written)[len(GREETING) :]
    assert replies == (
        b'NO "authenticate first"\r\nNO "authenticate first"\r\nNO "authenticate first"\r\nNO "unknown command"\r\n'
    )


def test_plaintext_needs_tls_off_loopback() -> None:
    dialogue = run([_login()], new_conn=lambda: _new(is_loopback=False))
    written = bytes(dialogue.written)
    assert b'"SASL" "SCRAM-SHA-256"\r\n' in written
    assert written.endswith(b'NO (ENCRYPT-NEEDED) "plaintext authentication needs TLS: use STARTTLS"\r\n')


def test_starttls_forgets_pipelined_commands_and_repeats_capabilities() -> None:
    dialogue = run(
        [b"STARTTLS\r\nLISTSCRIPTS\r\n", None, _login() + b"STARTTLS\r\n"],
        new_conn=lambda: _new(is_loopback=False),
    )
    assert dialogue.events[:3] == [
        StartTls(),
        Authenticate(mechanism="PLAIN", initial_response=b"\0alice@example.test\0secret"),
        InvalidCommand(reply=no("TLS is already active")),
    ]
    written = bytes(dialogue.written)
    assert written.count(b'"IMPLEMENTATION"') == 2
    after_tls = written.split(b'OK "begin TLS negotiation"\r\n', 1)[1]
    assert b'"STARTTLS"' not in after_tls and b'"SASL" "SCRAM-SHA-256 PLAIN LOGIN"' in after_tls


def test_quoted_strings_escape_and_limits() -> None:
    long_name = "x" * 1025
    dialogue = run(
        [
            _login()
            + b'GETSCRIPT "a \\"quoted\\" \\\\ name"\r\n'
            + b'GETSCRIPT "bad \\n escape"\r\n'
            + f'GETSCRIPT "{long_name}"\r\n'.encode()
            + b'GETSCRIPT "unterminated\r\n'
            + b'GETSCRIPT ""\r\n'
            + b'GETSCRIPT "tab\tname"\r\n'
            + b"GETSCRIPT 12\r\n"
            + b'SETACTIVE ""\r\n'
            + b'HAVESPACE "a" 99999999999\r\n'
            + b'GETSCRIPT "\xff"\r\n'
        ]
    )
    commands = dialogue.events[1:-1]
    assert commands == [
        GetScript(name='a "quoted" \\ name'),
        InvalidCommand(reply=no('only \\" and \\\\ may be escaped in a quoted string')),
        InvalidCommand(reply=no("quoted string too long: send a literal")),
        InvalidCommand(reply=no("unterminated quoted string")),
        InvalidCommand(reply=no("a script name cannot be empty")),
        InvalidCommand(reply=no("control characters are not allowed in script names")),
        InvalidCommand(reply=no("the script name must be a string")),
        SetActive(name=""),
        InvalidCommand(reply=no("number too large")),
        InvalidCommand(reply=no("the script name is not UTF-8")),
    ]


def test_a_literal_over_the_limit_is_skipped_and_refused() -> None:
    big = b"x" * 300
    dialogue = run(
        [_login() + b'PUTSCRIPT "big" {300+}\r\n' + big + b"\r\nLISTSCRIPTS\r\n"],
        new_conn=lambda: _new(limits=Limits(max_literal=100)),
    )
    assert dialogue.events[1:3] == [
        InvalidCommand(reply=no("script is larger than this server takes", code=Code.QUOTA_MAXSIZE)),
        ListScripts(),
    ]
    assert b'NO (QUOTA/MAXSIZE) "script is larger than this server takes"\r\n' in dialogue.written


def test_an_over_long_line_is_refused_once() -> None:
    dialogue = run(
        [_login() + b"NOOP " + b"x" * 300 + b"\r\nNOOP\r\n"], new_conn=lambda: _new(limits=Limits(max_line=100))
    )
    assert dialogue.events[1:3] == [InvalidCommand(reply=no("line too long")), Noop(tag=None)]


def test_too_many_errors_close_with_bye() -> None:
    dialogue = run([b"FROB\r\n" * 5], new_conn=lambda: _new(limits=Limits(max_errors=2)))
    assert bytes(dialogue.written).endswith(b'BYE "too many bad commands, closing connection"\r\n')
    assert dialogue.conn.state is State.CLOSED


def test_three_failed_logins_close_the_connection() -> None:
    def refusing(conn: ServerConnection, event: Event) -> bytes:
        if isinstance(event, Authenticate):
            return conn.send(no("bad password"))
        return permissive(conn, event)

    conn = _new()
    dialogue = converse([_login() * 4], conn=conn, policy=refusing)
    assert [e for e in dialogue.events if isinstance(e, Authenticate)].__len__() == 3
    assert conn.state is State.CLOSED


def test_eof_mid_literal_closes() -> None:
    dialogue = run([_login() + b'PUTSCRIPT "a" {100+}\r\nkeep;'])
    assert dialogue.events[-1] == ConnectionClosed()


def test_replies_out_of_turn_are_our_mistake() -> None:
    conn = _new()
    _capabilities(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(ok())
    conn.receive_data(b"FROB\r\n")
    assert isinstance(conn.next_event(), InvalidCommand)
    with pytest.raises(LocalProtocolError):
        conn.send(ok())


def test_quote_chooses_a_literal_when_needed() -> None:
    assert quote('a"b\\c') == b'"a\\"b\\\\c"'
    assert quote("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert quote("é") == '"é"'.encode()


# ---- fuzzing ----------------------------------------------------------------------------------------

pieces = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"\r\n",
                b'"',
                b"{5+}\r\n",
                b"{3}\r\n",
                b"{99999999999+}\r\n",
                _login(),
                b"STARTTLS\r\n",
                b'PUTSCRIPT "a" ',
                b'AUTHENTICATE "PLAIN"\r\n',
                b'"*"\r\n',
                b"LOGOUT\r\n",
                b"UNAUTHENTICATE\r\n",
            ]
        ),
    ),
    max_size=30,
)


def _fuzz_conn() -> ServerConnection:
    return _new(limits=Limits(max_line=64, max_literal=32, max_errors=1000))


@settings(max_examples=300, deadline=None)
@given(pieces, st.lists(st.booleans(), max_size=30))
def test_arbitrary_bytes_give_only_events(data: list[bytes], tls_after: list[bool]) -> None:
    conn = _fuzz_conn()
    dialogue = Dialogue(conn)
    _capabilities(conn)
    for index, packet in enumerate(data):
        if conn.state is State.CLOSED:
            break
        conn.receive_data(packet)
        _drain(dialogue, permissive)
        if index < len(tls_after) and tls_after[index] and conn.state is State.TLS:
            conn.tls_established()
            _capabilities(conn)
            _drain(dialogue, permissive)


@settings(max_examples=300, deadline=None)
@given(pieces)
def test_splitting_does_not_change_events(data: list[bytes]) -> None:
    packets: list[bytes | None] = [b"".join(data)]
    whole = converse(packets, conn=_fuzz_conn())
    octets = converse(bytewise(packets), conn=_fuzz_conn())
    assert octets.events == whole.events
    assert octets.written == whole.written
