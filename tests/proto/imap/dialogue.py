"""A trivial application driving an IMAP ServerConnection, for tests: it answers every event like a
permissive server would and records the events and the bytes written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pochta.proto.imap import (
    AppendEnd,
    AppendStart,
    AuthCancelled,
    AuthResponse,
    Command,
    ConnectionClosed,
    Continuation,
    Done,
    Event,
    InvalidCommand,
    Limits,
    LiteralChunk,
    LiteralStart,
    NeedData,
    Paused,
    ServerConnection,
    State,
    Status,
    Tagged,
    commands,
)
from pochta.proto.imap.responses import Condition


@dataclass
class Transcript:
    events: list[Event] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)


def answer(conn: ServerConnection, event: Event) -> bytes:
    """The permissive answer to ``event`` (b"" when it needs none)."""
    match event:
        case Command(tag=tag, command=commands.Authenticate(initial_response=None)):
            return conn.send(Continuation(text=""))
        case Command(command=commands.Idle()):
            return conn.send(Continuation(text="idling"))
        case Command(tag=tag, command=commands.Logout()):
            return conn.send(Condition(status=Status.BYE, text="bye")) + conn.send(
                Tagged(tag=tag, status=Status.OK, text="done")
            )
        case Command(tag=tag) | AppendEnd(tag=tag) | AuthResponse(tag=tag) | Done(tag=tag):
            return conn.send(Tagged(tag=tag, status=Status.OK, text="done"))
        case AuthCancelled(tag=tag):
            return conn.send(Tagged(tag=tag, status=Status.BAD, text="cancelled"))
        case LiteralStart():
            return conn.send(Continuation())
        case AppendStart(is_sync=True):
            return conn.send(Continuation())
        case InvalidCommand(reply=reply, is_fatal=is_fatal):
            out = conn.send(reply)
            if is_fatal:
                out += conn.send(Condition(status=Status.BYE, text="too many errors"))
            return out
    return b""


def drain(conn: ServerConnection, transcript: Transcript) -> Event:
    """Answer events until the core needs data (or pauses for TLS, or closes)."""
    while True:
        event = conn.next_event()
        if isinstance(event, NeedData | Paused | ConnectionClosed):
            return event
        transcript.events.append(event)
        transcript.output += answer(conn, event)


def converse(packets: Iterable[bytes], *, conn: ServerConnection | None = None, eof: bool = True) -> Transcript:
    conn = conn or ServerConnection(limits=Limits(max_errors=1000))
    transcript = Transcript()
    for packet in packets:
        if conn.state is State.LOGOUT:
            break
        if not packet:
            continue
        conn.receive_data(packet)
        drain(conn, transcript)
    if eof and conn.state is not State.LOGOUT:
        conn.receive_data(b"")
        drain(conn, transcript)
    return transcript


def bytewise(data: bytes) -> list[bytes]:
    return [data[index : index + 1] for index in range(len(data))]


def merged(events: list[Event]) -> list[Event]:
    """Events with adjacent LiteralChunks joined, so how the bytes were split does not matter."""
    result: list[Event] = []
    for event in events:
        if isinstance(event, LiteralChunk) and result and isinstance(result[-1], LiteralChunk):
            result[-1] = LiteralChunk(data=result[-1].data + event.data)
        else:
            result.append(event)
    return result


def logged_in(**kwargs: object) -> ServerConnection:
    conn = ServerConnection(**kwargs)  # type: ignore[arg-type]
    conn.receive_data(b"a LOGIN user pass\r\n")
    drain(conn, Transcript())
    assert conn.state is State.AUTHENTICATED
    return conn


def selected(**kwargs: object) -> ServerConnection:
    conn = logged_in(**kwargs)
    conn.receive_data(b"s SELECT INBOX\r\n")
    drain(conn, Transcript())
    assert conn.state is State.SELECTED
    return conn


def events_of(data: bytes, make: Callable[[], ServerConnection] = ServerConnection) -> list[Event]:
    """The events of ``data`` fed whole, checked to be the same when fed one byte at a time."""
    whole = converse([data], conn=make(), eof=False)
    octets = converse(bytewise(data), conn=make(), eof=False)
    assert merged(octets.events) == merged(whole.events)
    assert octets.output == whole.output
    return merged(whole.events)


def command_of(data: bytes, make: Callable[[], ServerConnection] = ServerConnection) -> commands.CommandType:
    """The one command ``data`` (a full line, CRLF added) parses to."""
    events = events_of(data + b"\r\n", make)
    commands_found = [event for event in events if isinstance(event, Command)]
    assert len(commands_found) == 1, events
    return commands_found[0].command


def refusal_of(data: bytes, make: Callable[[], ServerConnection] = ServerConnection) -> InvalidCommand:
    events = events_of(data + b"\r\n", make)
    assert len(events) == 1, events
    assert isinstance(events[0], InvalidCommand), events
    return events[0]
