"""Any bytes from a peer give events, never an exception; how the bytes are split does not matter."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.proto.smtp import (
    ConnectionClosed,
    Extensions,
    Limits,
    NeedData,
    Paused,
    ServerConnection,
    State,
)

from .dialogue import GREETING, Packet, bytewise, converse, merged, permissive

COMMANDS = [
    b"EHLO c.example\r\n", b"HELO c\r\n", b"MAIL FROM:<a@c.example>\r\n", b"MAIL FROM:<> BODY=BINARYMIME\r\n",
    b"RCPT TO:<b@example.test>\r\n", b"DATA\r\n", b"BDAT 3\r\n", b"BDAT 0 LAST\r\n", b"RSET\r\n", b"QUIT\r\n",
    b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"AUTH LOGIN dXNlcg==\r\n", b"*\r\n", b".\r\n", b"\r\n.\r\n", b"\n.\n",
    b"\r", b"\n", b".", b"\x00", b"\xff", b"NOOP\r\n", b"x" * 70,
]  # fmt: skip

pieces = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(COMMANDS)), max_size=30)


def _conn() -> ServerConnection:
    return ServerConnection(
        hostname="mx.example.test",
        limits=Limits(max_command_line=64, max_auth_line=96, max_message_size=50, max_errors=1000),
        extensions=Extensions(starttls=True, auth_mechanisms=("PLAIN", "LOGIN"), is_auth_tls_only=False),
    )


@settings(max_examples=300, deadline=None)
@given(pieces, st.lists(st.booleans(), max_size=30))
def test_arbitrary_packets_with_tls_give_only_events(data: list[bytes], tls_after: list[bool]) -> None:
    conn = _conn()
    conn.send(GREETING)
    for index, packet in enumerate(data):
        if conn.state is State.CLOSED:
            break
        conn.receive_data(packet)
        _answer_all(conn)
        if index < len(tls_after) and tls_after[index] and conn.state is State.TLS:
            conn.tls_established()
            _answer_all(conn)
    if conn.state is not State.CLOSED:
        conn.receive_data(b"")
    assert isinstance(_answer_all(conn), ConnectionClosed)


@settings(max_examples=200, deadline=None)
@given(pieces)
def test_splitting_does_not_change_events(data: list[bytes]) -> None:
    whole_input: list[Packet] = [b"".join(data)]
    whole = converse(whole_input, conn=_conn())
    octets = converse(bytewise(whole_input), conn=_conn())
    assert merged(octets.events) == merged(whole.events)
    assert octets.written == whole.written


def _answer_all(conn: ServerConnection) -> object:
    while True:
        event = conn.next_event()
        if isinstance(event, NeedData | Paused | ConnectionClosed):
            return event
        reply = permissive(conn, event)
        if reply is not None:
            conn.send(reply)
