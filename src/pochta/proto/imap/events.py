"""What the IMAP client did, as values: the server core turns bytes into these (h11's pull style).

A :class:`Command`, :class:`AppendEnd`, :class:`Done`, :class:`AuthCancelled` and :class:`InvalidCommand`
wait for the tagged completion (``ServerConnection.send(Tagged(...))``); until it comes,
``next_event`` returns :class:`Paused`. :class:`LiteralStart`, a synchronising :class:`AppendStart`,
an :class:`Authenticate <.commands.Authenticate>` command and :class:`AuthResponse` may instead be
answered with a :class:`~.responses.Continuation`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .commands import CommandType
from .responses import Condition, Tagged


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedData:
    """Feed more bytes with ``receive_data``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """The core waits for the application's answer (or for ``tls_established``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The peer closed, or the session ended (LOGOUT, BYE)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    tag: str
    command: CommandType


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidCommand:
    """A command the core refuses: send ``reply`` (tagged, or ``* BAD`` without a usable tag)."""

    tag: str | None
    reply: Tagged | Condition
    is_fatal: bool = False  # too many errors: send reply, then ``* BYE`` and close


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralStart:
    """A synchronising literal of a command other than APPEND (RFC 9051 §4.3, §7.5).

    Send ``Continuation`` to have the core read it, or a tagged NO/BAD to refuse the command.
    """

    tag: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendStart:
    """One message of APPEND (RFC 9051 §6.3.12; MULTIAPPEND RFC 3502 gives ``index`` 1, 2, ...).

    If ``is_sync``, send ``Continuation`` to receive the message, or a tagged NO (e.g. ``[TOOBIG]``,
    ``[TRYCREATE]``) to refuse the whole command. Otherwise (LITERAL+) the octets follow unasked:
    :class:`LiteralChunk` events, then :class:`LiteralEnd`.
    """

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    date: datetime.datetime | None
    size: int
    is_binary: bool  # literal8 ``~{n}`` (RFC 3516 §4.4): may hold NUL and bare CR/LF
    is_sync: bool
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralChunk:
    """Some octets of the APPEND message; the chunking depends on how the bytes arrived."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralEnd:
    """All octets of the current APPEND message have been delivered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEnd:
    """The APPEND command ended after ``count`` messages: store them (atomically) and answer tagged."""

    tag: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    """A SASL client response line (RFC 9051 §6.2.2), base64-decoded; answer Continuation or tagged."""

    tag: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCancelled:
    """``*``: the client cancelled AUTHENTICATE; RFC 9051 §6.2.2 wants a tagged BAD."""

    tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """``DONE`` ended IDLE (RFC 2177 §3); answer with the tagged OK of the IDLE command."""

    tag: str


Event = (
    NeedData | Paused | ConnectionClosed | Command | InvalidCommand | LiteralStart | AppendStart | LiteralChunk
    | LiteralEnd | AppendEnd | AuthResponse | AuthCancelled | Done
)  # fmt: skip
