"""The IMAP server protocol core, sans-IO (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).

A session drives it like h11::

    conn = ServerConnection(limits=Limits())
    out = conn.send(Condition(status=Status.OK, text="Pochta ready"))
    conn.receive_data(data)
    match conn.next_event():
        case NeedData(): ...  # read more from the socket
        case Command(tag=tag, command=Login(user=user, password=password)): ...
"""

from . import commands, responses, search
from .commands import CommandType
from .events import (
    AppendEnd,
    AppendStart,
    AuthCancelled,
    AuthResponse,
    Command,
    ConnectionClosed,
    Done,
    Event,
    InvalidCommand,
    LiteralChunk,
    LiteralEnd,
    LiteralStart,
    NeedData,
    Paused,
)
from .limits import Limits
from .responses import Code, Condition, Continuation, Response, Status, Tagged, render
from .seqset import SequenceSet, compress
from .server import LocalProtocolError, ServerConnection, State
from .utf7 import Utf7Error, decode_mailbox, encode_mailbox

__all__ = [
    "AppendEnd",
    "AppendStart",
    "AuthCancelled",
    "AuthResponse",
    "Code",
    "Command",
    "CommandType",
    "Condition",
    "ConnectionClosed",
    "Continuation",
    "Done",
    "Event",
    "InvalidCommand",
    "Limits",
    "LiteralChunk",
    "LiteralEnd",
    "LiteralStart",
    "LocalProtocolError",
    "NeedData",
    "Paused",
    "Response",
    "SequenceSet",
    "ServerConnection",
    "State",
    "Status",
    "Tagged",
    "Utf7Error",
    "commands",
    "compress",
    "decode_mailbox",
    "encode_mailbox",
    "render",
    "responses",
    "search",
]
