"""Any bytes from a peer give events, never an exception; how the bytes are split does not matter."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.proto.imap import ConnectionClosed, Limits, NeedData, Paused, ServerConnection, State

from .dialogue import Transcript, bytewise, converse, drain, merged

COMMANDS = [
    b"a LOGIN u p\r\n", b"b SELECT INBOX\r\n", b"c FETCH 1:* (FLAGS BODY.PEEK[1.HEADER.FIELDS (From)]<0.9>)\r\n",
    b"d APPEND INBOX {3}\r\n", b"d APPEND INBOX (\\Seen) {4+}\r\n", b"e APPEND x ~{2}\r\n", b"f LOGIN {5+}\r\n",
    b"g IDLE\r\n", b"DONE\r\n", b"h AUTHENTICATE PLAIN\r\n", b"*\r\n", b"AHVzZXIAcGFzcw==\r\n",
    b"i SEARCH OR (FROM x) NOT 1:3 UID $\r\n", b"j STORE 1 +FLAGS (\\Seen)\r\n", b"k ENABLE UTF8=ACCEPT\r\n",
    b"l CLOSE\r\n", b"m STARTTLS\r\n", b"{3}\r\n", b"{2+}\r\n", b"~{1}\r\n", b"\r\n", b"\r", b"\n", b"\x00", b"\xff",
    b'"', b"(", b")", b" ", b"x" * 90, b"n LOGOUT\r\n",
]  # fmt: skip

pieces = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(COMMANDS)), max_size=30)


def _conn() -> ServerConnection:
    return ServerConnection(limits=Limits(max_command=128, max_append=64, max_errors=1000, max_nonsync_literal=16))


@settings(max_examples=300, deadline=None)
@given(pieces, st.lists(st.booleans(), max_size=30))
def test_arbitrary_packets_give_only_events(data: list[bytes], tls_after: list[bool]) -> None:
    conn = _conn()
    transcript = Transcript()
    for index, packet in enumerate(data):
        if conn.state is State.LOGOUT or not packet:
            break
        conn.receive_data(packet)
        drain(conn, transcript)
        if index < len(tls_after) and tls_after[index] and conn._mode.name == "TLS":
            conn.tls_established()
            drain(conn, transcript)
    if conn.state is not State.LOGOUT:
        assert isinstance(drain(conn, transcript), NeedData | Paused | ConnectionClosed)
        conn.receive_data(b"")
    assert isinstance(drain(conn, transcript), ConnectionClosed)


@settings(max_examples=200, deadline=None)
@given(pieces)
def test_splitting_does_not_change_events(data: list[bytes]) -> None:
    joined = b"".join(data)
    whole = converse([joined], conn=_conn())
    octets = converse(bytewise(joined), conn=_conn())
    assert merged(octets.events) == merged(whole.events)
    assert octets.output == whole.output


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_after_login(data: bytes) -> None:
    conn = _conn()
    conn.receive_data(b"a LOGIN u p\r\nb SELECT INBOX\r\n")
    transcript = Transcript()
    drain(conn, transcript)
    for octet in bytewise(data):
        if conn.state is State.LOGOUT:
            break
        conn.receive_data(octet)
        drain(conn, transcript)
    if conn.state is not State.LOGOUT:
        conn.receive_data(b"")
    assert isinstance(drain(conn, transcript), ConnectionClosed)
