"""A trivial application driving a ServerConnection, for tests: it answers every event like a
permissive server would, and records the events and the bytes written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from pochta.proto.smtp import (
    Auth,
    AuthCancelled,
    AuthResponse,
    BdatEnd,
    ConnectionClosed,
    Data,
    DataChunk,
    DataEnd,
    Ehlo,
    Event,
    Expn,
    Help,
    InvalidCommand,
    MailFrom,
    NeedData,
    Noop,
    Paused,
    Quit,
    RcptTo,
    Reply,
    Rset,
    ServerConnection,
    StartTls,
    State,
    Vrfy,
    replies,
)

T = TypeVar("T")
GREETING = Reply(code=220, text="mx.example.test ESMTP Pochta")


class TlsStarts:
    """In a list of packets: the TLS handshake finished here."""


TLS = TlsStarts()
Packet = bytes | TlsStarts
Policy = Callable[[ServerConnection, Event], Reply | None]


def permissive(conn: ServerConnection, event: Event) -> Reply | None:
    match event:
        case Ehlo():
            return conn.ehlo_reply()
        case MailFrom() | RcptTo() | Rset() | Noop() | BdatEnd():
            return replies.OK
        case Data():
            return replies.DATA_GO_AHEAD
        case DataEnd(has_bare_line_ending=True):
            return replies.BARE_LINE_ENDING
        case DataEnd(is_too_large=True):
            return replies.MESSAGE_TOO_BIG
        case DataEnd():
            return Reply(code=250, status="2.0.0", text="queued")
        case StartTls():
            return replies.READY_FOR_TLS
        case Auth(initial_response=None):
            return replies.auth_challenge(b"")
        case Auth() | AuthResponse():
            return replies.AUTH_SUCCEEDED
        case AuthCancelled():
            return replies.AUTH_CANCELLED
        case Quit():
            return replies.BYE
        case Help():
            return replies.HELP
        case Vrfy():
            return replies.VRFY_CANNOT
        case Expn():
            return replies.EXPN_DISABLED
        case InvalidCommand(reply=reply):
            return reply
        case _:
            return None


@dataclass
class Dialogue:
    conn: ServerConnection
    events: list[Event] = field(default_factory=list)
    written: bytearray = field(default_factory=bytearray)

    @property
    def replies(self) -> list[str]:
        """The first line of each reply written, e.g. "250 2.0.0 OK"."""
        text = self.written.decode("utf-8")
        return [line for line in text.split("\r\n") if line and line[3:4] == " "]

    @property
    def content(self) -> bytes:
        return b"".join(event.data for event in self.events if isinstance(event, DataChunk))

    def of_type(self, kind: type[T]) -> list[T]:
        return [event for event in self.events if isinstance(event, kind)]


def converse(
    packets: Iterable[Packet],
    *,
    conn: ServerConnection | None = None,
    policy: Policy = permissive,
    greeting: Reply = GREETING,
) -> Dialogue:
    """Greet, feed each packet and answer every event until NeedData; EOF at the end."""
    dialogue = Dialogue(conn or ServerConnection(hostname="mx.example.test"))
    dialogue.written += dialogue.conn.send(greeting)
    for packet in packets:
        if isinstance(packet, TlsStarts):
            dialogue.conn.tls_established()
            continue
        if dialogue.conn.state is State.CLOSED:
            break
        dialogue.conn.receive_data(packet)
        _drain(dialogue, policy)
    if dialogue.conn.state is not State.CLOSED:
        dialogue.conn.receive_data(b"")
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
        reply = policy(conn, event)
        if reply is not None:
            dialogue.written += conn.send(reply)


def bytewise(packets: Iterable[Packet]) -> list[Packet]:
    """The same input, one octet a packet."""
    out: list[Packet] = []
    for packet in packets:
        if isinstance(packet, TlsStarts):
            out.append(packet)
        else:
            out.extend(bytes([octet]) for octet in packet)
    return out


def merged(events: list[Event]) -> list[Event]:
    """Events with consecutive DataChunks joined, to compare inputs split differently."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, DataChunk) and out and isinstance(out[-1], DataChunk):
            out[-1] = DataChunk(data=out[-1].data + event.data)
        else:
            out.append(event)
    return out


def transcript(
    script: str,
    *,
    new_conn: Callable[[], ServerConnection] | None = None,
    policy: Policy = permissive,
) -> Dialogue:
    """Run ``C:``/``S:`` lines (S: lines include the 220 greeting) whole and one octet at a time;
    both must write exactly the S: lines and give the same events."""
    client = bytearray()
    expected = bytearray()
    for raw in script.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "C:" or line.startswith("C: "):
            client += line[3:].encode("utf-8") + b"\r\n"
        elif line.startswith("S: "):
            expected += line[3:].encode("utf-8") + b"\r\n"
        else:
            raise ValueError(f"transcript line must start with C: or S: {line!r}")
    factory = new_conn or (lambda: ServerConnection(hostname="mx.example.test"))
    whole = converse([bytes(client)], conn=factory(), policy=policy)
    octets = converse(bytewise([bytes(client)]), conn=factory(), policy=policy)
    assert whole.written.decode("utf-8").splitlines() == expected.decode("utf-8").splitlines()
    assert octets.written == whole.written
    assert merged(octets.events) == merged(whole.events)
    return whole
