"""The server side of POP3 as a sans-IO state machine (RFC 1939, with RFC 2449 CAPA and response codes,
RFC 2595 STLS, RFC 5034 SASL, RFC 3206 SYS/AUTH codes and RFC 6856 UTF8).

The application feeds bytes with :meth:`ServerConnection.receive_data`, pulls events with
:meth:`ServerConnection.next_event` and answers each command event with :meth:`ServerConnection.send`,
which returns the bytes to write. A positive answer to RETR or TOP opens the message body: the
application streams it through :meth:`ServerConnection.send_body` (which byte-stuffs it) and ends it
with :meth:`ServerConnection.end_body`. Until an event is answered the core returns :class:`Paused`,
so pipelined commands (RFC 2449 §6.6) are never read ahead of their turn.

The core knows the protocol's states; it does not know the maildrop. Whether message 7 exists, and
whether a password is right, is for the application to say in its reply.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass

from pochta.proto.lines import TooLong, take_line
from pochta.proto.sasl import MECHANISMS

IMPLEMENTATION = "Pochta"
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})  # the password crosses the wire: TLS or loopback only


class LocalProtocolError(Exception):
    """The application used the connection wrongly (a reply out of turn, a body with no RETR)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_command_line: int = 1024  # RFC 2449 §4 caps client lines at 255 octets; long PASS arguments need more
    max_auth_line: int = 12288  # RFC 5034 §4 sets no limit on SASL lines; as SMTP's RFC 4954 §4
    max_errors: int = 10  # bad commands answered before the connection is closed
    max_auth_failures: int = 3  # failed logins before the connection is closed (RFC 1939 §4 allows it)


# ---- replies --------------------------------------------------------------------------------------


class Code(enum.StrEnum):
    """Extended response codes (RFC 2449 §8, RFC 3206)."""

    IN_USE = "IN-USE"  # the maildrop is locked by another session (RFC 2449 §8.1.1)
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 §8.1.2
    SYS_TEMP = "SYS/TEMP"  # a temporary system problem (RFC 3206 §4)
    SYS_PERM = "SYS/PERM"  # a permanent system problem (RFC 3206 §4)
    AUTH = "AUTH"  # a problem with the user's credentials (RFC 3206 §5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """``+OK text`` or ``-ERR [CODE] text``; ``lines`` makes it a multi-line response (CAPA, LIST, UIDL)."""

    is_ok: bool
    text: str = ""
    code: Code | None = None
    lines: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for line in (self.text, *(self.lines or ())):
            if "\r" in line or "\n" in line:
                raise ValueError("reply text must not contain CR or LF")
        if self.code is not None and self.is_ok:
            raise ValueError("response codes go with -ERR")  # RFC 2449 §8

    def to_bytes(self) -> bytes:
        """The status line, then for a multi-line reply its byte-stuffed lines and the final dot."""
        status = "+OK" if self.is_ok else "-ERR"
        parts = [status]
        if self.code is not None:
            parts.append(f"[{self.code}]")
        if self.text:
            parts.append(self.text)
        out = " ".join(parts).encode("utf-8") + b"\r\n"
        if self.lines is not None:
            stuffer = DotStuffer()
            out += b"".join(stuffer.feed(line.encode("utf-8") + b"\r\n") for line in self.lines) + stuffer.end()
        return out


def ok(text: str = "", *, lines: tuple[str, ...] | None = None) -> Reply:
    return Reply(is_ok=True, text=text, lines=lines)


def error(text: str, *, code: Code | None = None) -> Reply:
    return Reply(is_ok=False, text=text, code=code)


@dataclass(frozen=True, slots=True, kw_only=True)
class Continuation:
    """A SASL challenge: ``+ base64`` (RFC 5034 §4); empty data gives ``+ ``."""

    data: bytes

    def to_bytes(self) -> bytes:
        return b"+ " + base64.b64encode(self.data) + b"\r\n"


UNKNOWN_COMMAND = error("unknown command")
LINE_TOO_LONG = error("line too long")
CONTROL_CHARACTER = error("control character in command")
NOT_UTF8 = error("command is not UTF-8")
TOO_MANY_ERRORS = error("too many bad commands, closing connection")
PLAINTEXT_REFUSED = error("plaintext authentication needs TLS: use STLS or port 995", code=Code.AUTH)


# ---- byte-stuffing --------------------------------------------------------------------------------

_BARE_LF = re.compile(rb"(?<!\r)\n")


class DotStuffer:
    """The body of a multi-line response (RFC 1939 §3): each line that starts with "." gets another,
    bare LF line endings become CRLF, and :meth:`end` adds the line ending a last unfinished line
    lacks and the terminating ".". Chunks may split lines anywhere."""

    def __init__(self) -> None:
        self._is_line_start = True
        self._is_after_cr = False

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        prefix = b""
        if self._is_after_cr and data[:1] == b"\n":  # the CR of this CRLF ended the previous chunk
            prefix, data = b"\n", data[1:]
            self._is_line_start, self._is_after_cr = True, False
            if not data:
                return prefix
        data = _BARE_LF.sub(b"\r\n", data)
        data = data.replace(b"\n.", b"\n..")
        if self._is_line_start and data[:1] == b".":
            data = b"." + data
        self._is_line_start = data[-1:] == b"\n"
        self._is_after_cr = data[-1:] == b"\r"
        return prefix + data

    def end(self) -> bytes:
        if self._is_after_cr:
            return b"\n.\r\n"
        return b".\r\n" if self._is_line_start else b"\r\n.\r\n"


# ---- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedData:
    """Feed more bytes (or b"" at EOF)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """An event waits for its reply, a body is being sent, or a TLS handshake is due."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidCommand:
    """A peer's mistake; send ``reply`` (the core counts it towards the error limit)."""

    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class Capa:
    """RFC 2449 §5; answer with :meth:`ServerConnection.capa_reply`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Pass:
    user: str  # from the USER the server accepted just before (RFC 1939 §7)
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    mechanism: str  # upper case, one of the offered mechanisms
    initial_response: bytes | None  # RFC 5034 §4: "=" is an empty one, absent is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCancelled:
    """The client answered a challenge with "*" (RFC 5034 §4); answer -ERR."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stls:
    """RFC 2595 §4; answer +OK, write it, then do the handshake and call ``tls_established()``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Utf8:
    """RFC 6856 §2: the client enables UTF-8 mode."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stat:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class List:
    msg: int | None  # None: the whole scan listing (multi-line)


@dataclass(frozen=True, slots=True, kw_only=True)
class Uidl:
    msg: int | None  # None: the whole unique-id listing (multi-line)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retr:
    msg: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Top:
    msg: int
    lines: int  # body lines after the header block


@dataclass(frozen=True, slots=True, kw_only=True)
class Dele:
    msg: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit:
    """In TRANSACTION state the session enters UPDATE (RFC 1939 §6): remove the deleted messages, then
    answer; the connection closes after the reply either way."""


Command = (
    Capa
    | User
    | Pass
    | Auth
    | AuthResponse
    | AuthCancelled
    | Stls
    | Utf8
    | Stat
    | List
    | Uidl
    | Retr
    | Top
    | Dele
    | Noop
    | Rset
    | Quit
    | InvalidCommand
)
Event = Command | NeedData | Paused | ConnectionClosed


class State(enum.Enum):
    CONNECTED = enum.auto()  # waiting for the application's greeting
    AUTHORIZATION = enum.auto()  # RFC 1939 §4
    AUTH = enum.auto()  # in a SASL exchange: the next line is a response (RFC 5034 §4)
    TLS = enum.auto()  # +OK sent to STLS, waiting for tls_established()
    TRANSACTION = enum.auto()  # RFC 1939 §5
    UPDATE = enum.auto()  # QUIT in TRANSACTION: the application removes the deleted messages (§6)
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Greeting:
    pass


# Replies that must carry lines when positive; RETR and TOP instead open a streamed body.
_MULTILINE = (Capa,)
_BODY = (Retr, Top)
_CONTROL = frozenset(range(0x20)) - {0x09} | {0x7F}
_NUMBER = re.compile(r"[0-9]{1,18}")


class _CommandError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


class ServerConnection:
    def __init__(
        self,
        *,
        limits: Limits | None = None,
        mechanisms: tuple[str, ...] = MECHANISMS,
        is_tls: bool = False,
        is_loopback: bool = False,
        is_stls_offered: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self.mechanisms = tuple(name.upper() for name in mechanisms)
        self.state = State.CONNECTED
        self.is_tls = is_tls  # implicit TLS (port 995, RFC 8314) or after STLS
        self.is_loopback = is_loopback
        self.is_stls_offered = is_stls_offered
        self.is_utf8 = False  # RFC 6856 §2
        self.user: str | None = None  # the name of an accepted USER, until PASS
        self.error_count = 0
        self.auth_failures = 0
        self._buffer = bytearray()
        self._is_eof = False
        self._pending: Command | _Greeting | None = _Greeting()
        self._is_discarding_line = False
        self._body: DotStuffer | None = None
        self._is_closing = False

    @property
    def is_plaintext_allowed(self) -> bool:
        """USER/PASS, PLAIN and LOGIN only over TLS or from this machine (RFC 2595 §2.1, RFC 8314)."""
        return self.is_tls or self.is_loopback

    @property
    def is_reply_due(self) -> bool:
        """A command event waits for its reply."""
        return self._pending is not None

    @property
    def is_body_open(self) -> bool:
        """A RETR or TOP body is being sent."""
        return self._body is not None

    @property
    def offered_mechanisms(self) -> tuple[str, ...]:
        return tuple(m for m in self.mechanisms if self.is_plaintext_allowed or m not in PLAINTEXT_MECHANISMS)

    # ---- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means the peer closed its side."""
        if self._is_eof:
            raise LocalProtocolError("data received after EOF")
        if not data:
            self._is_eof = True
        elif self.state in (State.TLS, State.CLOSED):
            return  # plaintext after STLS is never read (RFC 2595 §4, CVE-2011-0411)
        else:
            self._buffer += data

    def next_event(self) -> Event:
        while True:
            if self.state is State.CLOSED:
                return ConnectionClosed()
            if self.state is State.TLS and self._is_eof:
                self.state = State.CLOSED
                return ConnectionClosed()
            if self._pending is not None or self._body is not None or self.state is State.TLS:
                return Paused()
            event = self._next_command_event()
            if event is not None:
                return event

    # ---- output ---------------------------------------------------------------------------------

    def send(self, reply: Reply | Continuation) -> bytes:
        """Answer the pending event; return the bytes to write."""
        pending = self._pending
        if self.state is State.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if pending is None:
            raise LocalProtocolError(f"no command waits for a reply in state {self.state.name}")
        if isinstance(reply, Continuation):
            if not isinstance(pending, Auth | AuthResponse):
                raise LocalProtocolError(f"cannot answer {type(pending).__name__} with a SASL challenge")
            self._pending = None
            self.state = State.AUTH
            return reply.to_bytes()
        self._check_shape(pending, reply)
        self._pending = None
        self._apply(pending, reply)
        if self._is_closing:
            self.state = State.CLOSED
        return reply.to_bytes()

    def send_body(self, data: bytes) -> bytes:
        """A chunk of the message RETR or TOP was answered +OK for, byte-stuffed."""
        if self._body is None:
            raise LocalProtocolError("no RETR or TOP body is open")
        return self._body.feed(data)

    def end_body(self) -> bytes:
        """The end of the body: a line ending if the message lacked one, and the final "."."""
        if self._body is None:
            raise LocalProtocolError("no RETR or TOP body is open")
        body, self._body = self._body, None
        return body.end()

    def close(self, reply: Reply) -> bytes:
        """An unsolicited last reply (shutting down); the connection is closed after it."""
        if self.state is State.CLOSED:
            return b""
        self.state = State.CLOSED
        self._pending = None
        self._body = None
        return reply.to_bytes()

    def capa_reply(self) -> Reply:
        """The multi-line answer to CAPA for the current state (RFC 2449 §5, §6)."""
        if not isinstance(self._pending, Capa):
            raise LocalProtocolError("no CAPA waits for a reply")
        lines = ["TOP"]
        if self.state is State.AUTHORIZATION:
            if self.is_plaintext_allowed:
                lines.append("USER")  # RFC 2449 §6.3
            mechanisms = self.offered_mechanisms
            if mechanisms:
                lines.append("SASL " + " ".join(mechanisms))  # RFC 2449 §6.4, RFC 5034 §5
        lines += ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UIDL"]  # RFC 2449 §6.5-6.7, RFC 3206 §6
        if self.state is State.AUTHORIZATION:
            lines.append("UTF8 USER")  # RFC 6856 §2: UTF-8 is accepted in USER and PASS too
            if self.is_stls_offered and not self.is_tls:
                lines.append("STLS")  # RFC 2595 §4
        lines.append(f"IMPLEMENTATION {IMPLEMENTATION}")  # RFC 2449 §6.9
        return ok("capability list follows", lines=tuple(lines))

    def tls_established(self) -> None:
        """TLS is up after STLS: forget what came before, as if just greeted (RFC 2595 §4)."""
        if self.state is not State.TLS:
            raise LocalProtocolError(f"no STLS in progress in state {self.state.name}")
        self._buffer.clear()
        self._is_discarding_line = False
        self.is_tls = True
        self.user = None
        self.state = State.AUTHORIZATION

    # ---- replies change the state ---------------------------------------------------------------

    def _check_shape(self, pending: Command | _Greeting, reply: Reply) -> None:
        needs_lines = reply.is_ok and (
            isinstance(pending, _MULTILINE) or (isinstance(pending, List | Uidl) and pending.msg is None)
        )
        if needs_lines and reply.lines is None:
            raise LocalProtocolError(f"{type(pending).__name__} needs a multi-line reply")
        if not needs_lines and reply.lines is not None:
            raise LocalProtocolError(f"{type(pending).__name__} takes a one-line reply")
        if isinstance(pending, InvalidCommand | AuthCancelled) and reply.is_ok:
            raise LocalProtocolError(f"{type(pending).__name__} is answered -ERR")

    def _apply(self, pending: Command | _Greeting, reply: Reply) -> None:
        is_ok = reply.is_ok
        match pending:
            case _Greeting():
                self.state = State.AUTHORIZATION if is_ok else State.CLOSED
            case User():
                self.user = pending.name if is_ok else None
            case Pass() | Auth() | AuthResponse() | AuthCancelled():
                self.user = None
                if is_ok and not isinstance(pending, AuthCancelled):
                    self.state = State.TRANSACTION
                    return
                self.state = State.AUTHORIZATION
                if not isinstance(pending, AuthCancelled):
                    self.auth_failures += 1
                    if self.auth_failures >= self.limits.max_auth_failures:
                        self._is_closing = True
            case Stls() if is_ok:
                self._buffer.clear()  # nothing pipelined survives into TLS (CVE-2011-0411)
                self.state = State.TLS
            case Utf8() if is_ok:
                self.is_utf8 = True
            case Retr() | Top() if is_ok:
                self._body = DotStuffer()
            case Quit():
                self.state = State.CLOSED
            case _:
                pass

    # ---- commands -------------------------------------------------------------------------------

    def _next_command_event(self) -> Event | None:
        line = self._take_line()
        if line is None:
            if self._is_eof:
                self.state = State.CLOSED
                return ConnectionClosed()
            return NeedData()
        if isinstance(line, Reply):
            if self.state is State.AUTH:
                self.state = State.AUTHORIZATION  # the exchange fails
            return self._error(line)
        if any(octet in _CONTROL for octet in line):
            if self.state is State.AUTH:
                self.state = State.AUTHORIZATION
            return self._error(CONTROL_CHARACTER)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            if self.state is State.AUTH:
                self.state = State.AUTHORIZATION
            return self._error(NOT_UTF8)
        if self.state is State.AUTH:
            return self._auth_response(text)
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        if verb != "AUTH" and len(line) + 2 > self.limits.max_command_line:
            return self._error(LINE_TOO_LONG)  # the longer AUTH limit let this line through
        try:
            if self.state is State.AUTHORIZATION:
                return self._authorization_command(verb, argument)
            return self._transaction_command(verb, argument)
        except _CommandError as exc:
            return self._error(exc.reply)

    def _take_line(self) -> bytes | Reply | None:
        """A line without its line ending, LINE_TOO_LONG, or None when no whole line is buffered."""
        line, self._is_discarding_line = take_line(
            self._buffer, limit=self._line_limit(), is_discarding=self._is_discarding_line
        )
        return LINE_TOO_LONG if line is TooLong.LINE else line

    def _line_limit(self) -> int:
        if self.state is State.AUTHORIZATION or self.state is State.AUTH:
            return max(self.limits.max_command_line, self.limits.max_auth_line)
        return self.limits.max_command_line

    def _authorization_command(self, verb: str, argument: str) -> Event:
        user, self.user = self.user, None  # RFC 1939 §7: PASS only right after a successful USER
        match verb:
            case "CAPA":
                _no_argument(verb, argument)
                return self._reply_to(Capa())
            case "USER":
                if not self.is_plaintext_allowed:
                    return self._error(PLAINTEXT_REFUSED)
                if not argument:
                    return self._error(error("USER needs a name"))
                return self._reply_to(User(name=argument))
            case "PASS":
                if not self.is_plaintext_allowed:
                    return self._error(PLAINTEXT_REFUSED)
                if user is None:
                    return self._error(error("send USER first"))  # RFC 1939 §7
                if not argument:
                    return self._error(error("PASS needs a password"))
                return self._reply_to(Pass(user=user, password=argument))
            case "AUTH":
                return self._auth(argument)
            case "STLS":
                _no_argument(verb, argument)
                if self.is_tls:
                    return self._error(error("TLS is already active"))
                if not self.is_stls_offered:
                    return self._error(error("STLS not available"))
                return self._reply_to(Stls())
            case "UTF8":
                _no_argument(verb, argument)
                return self._reply_to(Utf8())
            case "QUIT":
                _no_argument(verb, argument)
                return self._reply_to(Quit())
            case "APOP":
                return self._error(error("APOP not available, use USER/PASS or AUTH"))
            case "STAT" | "LIST" | "RETR" | "DELE" | "NOOP" | "RSET" | "TOP" | "UIDL":
                return self._error(error("log in first"))  # RFC 1939 §5: TRANSACTION state only
            case _:
                return self._error(UNKNOWN_COMMAND)

    def _transaction_command(self, verb: str, argument: str) -> Event:
        match verb:
            case "CAPA":
                _no_argument(verb, argument)
                return self._reply_to(Capa())
            case "STAT":
                _no_argument(verb, argument)
                return self._reply_to(Stat())
            case "LIST" | "UIDL":
                arguments = argument.split()
                if len(arguments) > 1:
                    raise _CommandError(error(f"{verb} takes at most one message number"))
                msg = _message_number(arguments[0]) if arguments else None
                return self._reply_to(List(msg=msg) if verb == "LIST" else Uidl(msg=msg))
            case "RETR" | "DELE":
                arguments = argument.split()
                if len(arguments) != 1:
                    raise _CommandError(error(f"{verb} needs a message number"))
                msg = _message_number(arguments[0])
                return self._reply_to(Retr(msg=msg) if verb == "RETR" else Dele(msg=msg))
            case "TOP":
                arguments = argument.split()
                if len(arguments) != 2:
                    raise _CommandError(error("TOP needs a message number and a number of lines"))
                msg = _message_number(arguments[0])
                if not _NUMBER.fullmatch(arguments[1]):
                    raise _CommandError(error("invalid number of lines"))
                return self._reply_to(Top(msg=msg, lines=int(arguments[1])))
            case "NOOP":
                _no_argument(verb, argument)
                return self._reply_to(Noop())
            case "RSET":
                _no_argument(verb, argument)
                return self._reply_to(Rset())
            case "QUIT":
                _no_argument(verb, argument)
                self.state = State.UPDATE
                return self._reply_to(Quit())
            case "USER" | "PASS" | "AUTH" | "APOP" | "STLS" | "UTF8":
                return self._error(error("not allowed after login"))  # RFC 1939 §4, RFC 2595 §4
            case _:
                return self._error(UNKNOWN_COMMAND)

    def _auth(self, argument: str) -> Event:
        arguments = argument.split()
        if not arguments or len(arguments) > 2:
            return self._error(error("AUTH needs a mechanism and at most an initial response"))
        mechanism = arguments[0].upper()
        if mechanism not in self.mechanisms:
            return self._error(error("unknown SASL mechanism"))  # RFC 5034 §4
        if mechanism not in self.offered_mechanisms:
            return self._error(PLAINTEXT_REFUSED)
        initial: bytes | None = None
        if len(arguments) == 2:
            initial = b"" if arguments[1] == "=" else _base64(arguments[1])  # RFC 5034 §4
        return self._reply_to(Auth(mechanism=mechanism, initial_response=initial))

    def _auth_response(self, text: str) -> Event:
        if text == "*":
            return self._reply_to(AuthCancelled())  # RFC 5034 §4
        try:
            return self._reply_to(AuthResponse(data=_base64(text)))
        except _CommandError as exc:
            self.state = State.AUTHORIZATION  # RFC 5034 §4: a bad response fails the exchange
            return self._error(exc.reply)

    # ---- events that wait for a reply -----------------------------------------------------------

    def _reply_to(self, event: Command) -> Command:
        self._pending = event
        return event

    def _error(self, reply: Reply) -> Command:
        self.error_count += 1
        if self.error_count > self.limits.max_errors:
            reply = TOO_MANY_ERRORS
            self._is_closing = True
        return self._reply_to(InvalidCommand(reply=reply))


def _no_argument(verb: str, argument: str) -> None:
    if argument.strip():
        raise _CommandError(error(f"{verb} takes no argument"))


def _message_number(text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise _CommandError(error("invalid message number"))  # RFC 1939 §3: a decimal number from 1
    number = int(text)
    if number == 0:
        raise _CommandError(error("no such message"))
    return number


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _CommandError(error("invalid base64")) from exc
