"""The server side of ManageSieve (RFC 5804) as a sans-IO state machine.

The application feeds bytes with :meth:`ServerConnection.receive_data`, pulls events with
:meth:`ServerConnection.next_event` and answers each command event with :meth:`ServerConnection.send`,
which returns the bytes to write. The first reply owed is the greeting (the capability listing,
RFC 5804 §1.7); after STARTTLS it is owed again (§2.2). Until an event is answered the core returns
:class:`Paused`, so pipelined commands are never read ahead of their turn.

Arguments are atoms, numbers and strings: quoted (at most 1024 octets, ``\\"`` and ``\\\\`` escaped) or
literals. Clients send non-synchronising literals ``{n+}`` (§4); a synchronising ``{n}`` is read the same
way, without a continuation, as other servers do. A literal longer than the limit is skipped as it
arrives and the command is refused with ``NO (QUOTA/MAXSIZE)``, so its octets are never read as commands.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pochta.proto.sasl import MECHANISMS

IMPLEMENTATION = "Pochta"
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})  # the password crosses the wire: TLS or loopback only
MAX_QUOTED = 1024  # RFC 5804 §4: quoted strings are at most 1024 octets


class LocalProtocolError(Exception):
    """The application used the connection wrongly (a reply out of turn)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_line: int = 8192  # octets of a command outside its literals; RFC 5804 sets none
    max_literal: int = 1 << 20  # largest literal (a script); the [sieve] max_script_size normally
    max_name: int = 512  # octets of a script name (RFC 5804 §1.6 lets servers refuse long names)
    max_errors: int = 20  # bad commands answered before the connection is closed
    max_auth_failures: int = 3  # failed logins before the connection is closed


# ---- replies --------------------------------------------------------------------------------------


class Kind(enum.StrEnum):
    OK = "OK"
    NO = "NO"
    BYE = "BYE"


class Code(enum.StrEnum):
    """Response codes (RFC 5804 §1.3)."""

    AUTH_TOO_WEAK = "AUTH-TOO-WEAK"
    ENCRYPT_NEEDED = "ENCRYPT-NEEDED"
    QUOTA = "QUOTA"
    QUOTA_MAXSCRIPTS = "QUOTA/MAXSCRIPTS"
    QUOTA_MAXSIZE = "QUOTA/MAXSIZE"
    SASL = "SASL"
    TRANSITION_NEEDED = "TRANSITION-NEEDED"
    TRYLATER = "TRYLATER"
    ACTIVE = "ACTIVE"
    NONEXISTENT = "NONEXISTENT"
    ALREADYEXISTS = "ALREADYEXISTS"
    TAG = "TAG"
    WARNINGS = "WARNINGS"


def quote(text: str) -> bytes:
    """A string as the server sends it: quoted when it can be, else a literal (RFC 5804 §4)."""
    data = text.encode("utf-8")
    if len(data) > MAX_QUOTED or b"\r" in data or b"\n" in data or b"\0" in data:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """``OK``, ``NO`` or ``BYE``, an optional response code with its string, an optional human text;
    ``data`` is what comes before the status line (capabilities, a script list, a script)."""

    kind: Kind
    text: str = ""
    code: Code | None = None
    code_data: str | None = None  # SASL's server data, NOOP's tag
    data: bytes = b""

    def to_bytes(self) -> bytes:
        parts = [self.kind.value.encode()]
        if self.code is not None:
            code = self.code.value.encode()
            if self.code_data is not None:
                code += b" " + quote(self.code_data)
            parts.append(b"(" + code + b")")
        if self.text:
            parts.append(quote(self.text))
        return self.data + b" ".join(parts) + b"\r\n"


def ok(text: str = "", *, code: Code | None = None, code_data: str | None = None, data: bytes = b"") -> Reply:
    return Reply(kind=Kind.OK, text=text, code=code, code_data=code_data, data=data)


def no(text: str, *, code: Code | None = None) -> Reply:
    return Reply(kind=Kind.NO, text=text, code=code)


def bye(text: str, *, code: Code | None = None) -> Reply:
    return Reply(kind=Kind.BYE, text=text, code=code)


def script_list(scripts: Iterable[tuple[str, bool]]) -> Reply:
    """The answer to LISTSCRIPTS: each name, the active one marked (RFC 5804 §2.7)."""
    lines = b"".join(quote(name) + (b" ACTIVE" if is_active else b"") + b"\r\n" for name, is_active in scripts)
    return ok("listscripts completed", data=lines)


def script_content(source: str) -> Reply:
    """The answer to GETSCRIPT: the script as a literal (RFC 5804 §2.9)."""
    data = source.encode("utf-8")
    return ok("getscript completed", data=b"{%d}\r\n" % len(data) + data + b"\r\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """A SASL challenge: a base64 string on a line of its own (RFC 5804 §2.1)."""

    data: bytes

    def to_bytes(self) -> bytes:
        return quote(base64.b64encode(self.data).decode()) + b"\r\n"


UNKNOWN_COMMAND = no("unknown command")
LINE_TOO_LONG = no("line too long")
TOO_MANY_ERRORS = bye("too many bad commands, closing connection")
ENCRYPT_NEEDED = no("plaintext authentication needs TLS: use STARTTLS", code=Code.ENCRYPT_NEEDED)
SCRIPT_TOO_LARGE = no("script is larger than this server takes", code=Code.QUOTA_MAXSIZE)


# ---- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedData:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """An event waits for its reply (or STARTTLS for ``tls_established``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidCommand:
    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCancelled:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop:
    tag: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unauthenticate:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class HaveSpace:
    name: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PutScript:
    name: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckScript:
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListScripts:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SetActive:
    name: str  # "" deactivates every script (RFC 5804 §2.8)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetScript:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteScript:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameScript:
    old: str
    new: str


Command = (
    Capability
    | Authenticate
    | AuthResponse
    | AuthCancelled
    | StartTls
    | Logout
    | Noop
    | Unauthenticate
    | HaveSpace
    | PutScript
    | CheckScript
    | ListScripts
    | SetActive
    | GetScript
    | DeleteScript
    | RenameScript
    | InvalidCommand
)
Event = Command | NeedData | Paused | ConnectionClosed


class State(enum.Enum):
    CONNECTED = enum.auto()  # waiting for the application's greeting (the capability listing)
    NON_AUTHENTICATED = enum.auto()
    AUTH = enum.auto()  # in a SASL exchange: the next line is a response string
    TLS = enum.auto()  # OK sent to STARTTLS, waiting for tls_established()
    AUTHENTICATED = enum.auto()
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Greeting:
    pass


# ---- the tokenizer --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _String:
    value: bytes


@dataclass(frozen=True, slots=True)
class _Atom:
    value: str  # command names and the ACTIVE-like words; upper-cased


Token = _String | _Atom | int


@dataclass(frozen=True, slots=True)
class _Incomplete:
    need: int  # the buffer must be at least this long before a scan can finish


@dataclass(frozen=True, slots=True)
class _Bad:
    reply: Reply  # then skip from `at` to the end of the line
    at: int


@dataclass(frozen=True, slots=True)
class _Skip:
    octets: int  # a literal too large to keep: skip this many octets, then the line's rest
    reply: Reply


@dataclass(frozen=True, slots=True)
class _Line:
    tokens: list[Token]
    end: int


_LITERAL = re.compile(rb"\{([0-9]{1,10})(\+?)\}\r?\n")
_LITERAL_PREFIX = re.compile(rb"\{[0-9]{0,10}\+?\}?\r?\Z")
_ATOM = re.compile(rb"[A-Za-z][A-Za-z0-9_-]*")
_NUMBER = re.compile(rb"[0-9]+")
_MAX_NUMBER = 4294967295  # RFC 5804 §4: number = 1*DIGIT, 0 to 4294967295


def _scan(buffer: bytearray, limits: Limits) -> _Line | _Incomplete | _Bad | _Skip:
    """One command line (with its literals) from the start of the buffer."""
    pos = 0
    tokens: list[Token] = []
    line_octets = 0  # octets outside literals
    size = len(buffer)
    while True:
        if line_octets > limits.max_line:
            return _Bad(LINE_TOO_LONG, pos)
        if pos >= size:
            return _Incomplete(size + 1)
        octet = buffer[pos]
        if octet == 0x20:
            pos += 1
            line_octets += 1
        elif octet == 0x0D:
            if pos + 1 >= size:
                return _Incomplete(pos + 2)
            if buffer[pos + 1] != 0x0A:
                return _Bad(no("bare CR in command"), pos)
            return _Line(tokens, pos + 2)
        elif octet == 0x0A:
            return _Line(tokens, pos + 1)
        elif octet == 0x22:  # a quoted string
            end = pos + 1
            value = bytearray()
            while True:
                if end >= size:
                    return _Incomplete(size + 1)
                char = buffer[end]
                if char == 0x22:
                    break
                if char in (0x0D, 0x0A):
                    return _Bad(no("unterminated quoted string"), end)
                if char == 0x5C:
                    if end + 1 >= size:
                        return _Incomplete(end + 2)
                    char = buffer[end + 1]
                    if char not in (0x22, 0x5C):
                        return _Bad(no('only \\" and \\\\ may be escaped in a quoted string'), end)
                    end += 1
                value.append(char)
                end += 1
                if len(value) > MAX_QUOTED:
                    return _Bad(no("quoted string too long: send a literal"), end)
            tokens.append(_String(bytes(value)))
            line_octets += end + 1 - pos
            pos = end + 1
        elif octet == 0x7B:  # a literal {n+} or {n}
            match = _LITERAL.match(buffer, pos)
            if match is None:
                if _LITERAL_PREFIX.match(buffer, pos):
                    return _Incomplete(size + 1)
                return _Bad(no("bad literal"), pos)
            length = int(match.group(1))
            start = match.end()
            line_octets += start - pos
            if length > limits.max_literal:
                del buffer[:start]
                return _Skip(length, SCRIPT_TOO_LARGE)
            if start + length > size:
                return _Incomplete(start + length + 1)
            tokens.append(_String(bytes(buffer[start : start + length])))
            pos = start + length
        elif 0x30 <= octet <= 0x39:
            match = _NUMBER.match(buffer, pos)
            assert match is not None
            if match.end() >= size:
                return _Incomplete(size + 1)
            number = int(match.group())
            if number > _MAX_NUMBER:
                return _Bad(no("number too large"), pos)
            tokens.append(number)
            line_octets += match.end() - pos
            pos = match.end()
        else:
            match = _ATOM.match(buffer, pos)
            if match is None:
                return _Bad(no("unexpected character in command"), pos)
            if match.end() >= size:
                return _Incomplete(size + 1)
            tokens.append(_Atom(match.group().decode("ascii").upper()))
            line_octets += match.end() - pos
            pos = match.end()


class _CommandError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


# Script names (RFC 5804 §1.6): no control characters, nor LINE/PARAGRAPH SEPARATOR.
_BAD_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class ServerConnection:
    def __init__(
        self,
        *,
        limits: Limits | None = None,
        mechanisms: tuple[str, ...] = MECHANISMS,
        is_tls: bool = False,
        is_loopback: bool = False,
        is_starttls_offered: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self.mechanisms = tuple(name.upper() for name in mechanisms)
        self.state = State.CONNECTED
        self.is_tls = is_tls
        self.is_loopback = is_loopback
        self.is_starttls_offered = is_starttls_offered
        self.error_count = 0
        self.auth_failures = 0
        self._buffer = bytearray()
        self._need = 0  # do not scan again before the buffer is this long
        self._skip = 0  # octets of an over-long literal still to drop
        self._skip_reply: Reply | None = None
        self._is_discarding_line = False
        self._is_eof = False
        self._pending: Command | _Greeting | None = _Greeting()
        self._is_closing = False

    @property
    def is_plaintext_allowed(self) -> bool:
        """PLAIN and LOGIN only over TLS or from this machine (RFC 5804 §2.1, RFC 8314)."""
        return self.is_tls or self.is_loopback

    @property
    def is_reply_due(self) -> bool:
        return self._pending is not None

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
            return  # plaintext after STARTTLS is never read (CVE-2011-0411)
        else:
            self._buffer += data

    def next_event(self) -> Event:
        while True:
            if self.state is State.CLOSED:
                return ConnectionClosed()
            if self.state is State.TLS and self._is_eof:
                self.state = State.CLOSED
                return ConnectionClosed()
            if self._pending is not None or self.state is State.TLS:
                return Paused()
            event = self._next_command_event()
            if event is not None:
                return event

    # ---- output ---------------------------------------------------------------------------------

    def send(self, reply: Reply | Challenge) -> bytes:
        """Answer the pending event; return the bytes to write."""
        pending = self._pending
        if self.state is State.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if pending is None:
            raise LocalProtocolError(f"no command waits for a reply in state {self.state.name}")
        if isinstance(reply, Challenge):
            if not isinstance(pending, Authenticate | AuthResponse):
                raise LocalProtocolError(f"cannot answer {type(pending).__name__} with a SASL challenge")
            self._pending = None
            self.state = State.AUTH
            return reply.to_bytes()
        if isinstance(pending, InvalidCommand | AuthCancelled) and reply.kind is Kind.OK:
            raise LocalProtocolError(f"{type(pending).__name__} is answered NO")
        self._pending = None
        self._apply(pending, reply)
        if self._is_closing or reply.kind is Kind.BYE:
            self.state = State.CLOSED
        return reply.to_bytes()

    def close(self, reply: Reply) -> bytes:
        """An unsolicited last reply (BYE when shutting down); the connection is closed after it."""
        if self.state is State.CLOSED:
            return b""
        self.state = State.CLOSED
        self._pending = None
        return reply.to_bytes()

    def capability_reply(self, *, extensions: Iterable[str], max_redirects: int, owner: str | None) -> Reply:
        """The capability listing for the current state (RFC 5804 §1.7); also the greeting."""
        if not isinstance(self._pending, Capability | _Greeting):
            raise LocalProtocolError("no CAPABILITY or greeting waits for a reply")
        lines = [
            quote("IMPLEMENTATION") + b" " + quote(IMPLEMENTATION),
            quote("SIEVE") + b" " + quote(" ".join(sorted(extensions))),
        ]
        if self.state is not State.AUTHENTICATED:
            lines.append(quote("SASL") + b" " + quote(" ".join(self.offered_mechanisms)))
        if self.is_starttls_offered and not self.is_tls and self.state is not State.AUTHENTICATED:
            lines.append(quote("STARTTLS"))
        if max_redirects:
            lines.append(quote("MAXREDIRECTS") + b" " + quote(str(max_redirects)))
        if owner is not None and self.state is State.AUTHENTICATED:
            lines.append(quote("OWNER") + b" " + quote(owner))  # RFC 5804 §1.7
        lines += [quote("UNAUTHENTICATE"), quote("VERSION") + b" " + quote("1.0")]
        return ok(data=b"".join(line + b"\r\n" for line in lines))

    def tls_established(self) -> None:
        """TLS is up after STARTTLS: forget what came before; the capabilities are owed again (§2.2)."""
        if self.state is not State.TLS:
            raise LocalProtocolError(f"no STARTTLS in progress in state {self.state.name}")
        self._buffer.clear()
        self._need = 0
        self._is_discarding_line = False
        self.is_tls = True
        self.state = State.NON_AUTHENTICATED
        self._pending = _Greeting()

    def _apply(self, pending: Command | _Greeting, reply: Reply) -> None:
        is_ok = reply.kind is Kind.OK
        match pending:
            case _Greeting():
                self.state = State.NON_AUTHENTICATED if is_ok else State.CLOSED
            case Authenticate() | AuthResponse():
                if is_ok:
                    self.state = State.AUTHENTICATED
                    return
                self.state = State.NON_AUTHENTICATED
                self.auth_failures += 1
                if self.auth_failures >= self.limits.max_auth_failures:
                    self._is_closing = True
            case AuthCancelled():
                self.state = State.NON_AUTHENTICATED
            case StartTls() if is_ok:
                self._buffer.clear()  # nothing pipelined survives into TLS (CVE-2011-0411)
                self._need = 0
                self.state = State.TLS
            case Unauthenticate() if is_ok:
                self.state = State.NON_AUTHENTICATED
            case Logout():
                self.state = State.CLOSED
            case _:
                pass

    # ---- commands -------------------------------------------------------------------------------

    def _next_command_event(self) -> Event | None:
        buffer = self._buffer
        if self._skip:
            dropped = min(self._skip, len(buffer))
            del buffer[:dropped]
            self._skip -= dropped
            if self._skip:
                return self._need_data()
            self._is_discarding_line = True
        if self._is_discarding_line:
            newline = buffer.find(b"\n")
            if newline == -1:
                buffer.clear()
                return self._need_data()
            del buffer[: newline + 1]
            self._is_discarding_line = False
            reply, self._skip_reply = self._skip_reply or LINE_TOO_LONG, None
            return self._failed(reply)
        if len(buffer) < self._need:
            return self._need_data()
        if buffer.find(b"\n", max(0, self._need - 1)) == -1 and len(buffer) - self._need <= self.limits.max_line:
            return self._need_data()  # scanned again when a line ends, or when it is too long to (LINE_TOO_LONG)
        scanned = _scan(buffer, self.limits)
        match scanned:
            case _Incomplete(need=need):
                self._need = need
                return self._need_data()
            case _Bad(reply=reply, at=at):
                self._need = 0
                del buffer[:at]
                self._is_discarding_line = True
                self._skip_reply = reply
                return None
            case _Skip(octets=octets, reply=reply):
                self._need = 0
                self._skip = octets
                self._skip_reply = reply
                return None
            case _Line(tokens=tokens, end=end):
                self._need = 0
                del buffer[:end]
        try:
            if self.state is State.AUTH:
                return self._auth_response(tokens)
            return self._command(tokens)
        except _CommandError as exc:
            return self._error(exc.reply)

    def _need_data(self) -> Event:
        if self._is_eof:
            self.state = State.CLOSED
            return ConnectionClosed()
        return NeedData()

    def _failed(self, reply: Reply) -> Event:
        if self.state is State.AUTH:
            self.state = State.NON_AUTHENTICATED  # a broken response fails the exchange
        return self._error(reply)

    def _command(self, tokens: list[Token]) -> Event:
        if not tokens:
            return self._error(no("empty command"))
        verb, arguments = tokens[0], tokens[1:]
        if not isinstance(verb, _Atom):
            return self._error(no("a command starts with its name"))
        name = verb.value
        is_authenticated = self.state is State.AUTHENTICATED
        match name:
            case "CAPABILITY":
                _shape(name, arguments, 0)
                return self._reply_to(Capability())
            case "LOGOUT":
                _shape(name, arguments, 0)
                return self._reply_to(Logout())
            case "NOOP":
                if len(arguments) > 1:
                    raise _CommandError(no("NOOP takes at most a tag"))
                tag = _text(arguments[0], "tag") if arguments else None
                return self._reply_to(Noop(tag=tag))
            case "STARTTLS":
                _shape(name, arguments, 0)
                if self.is_tls:
                    return self._error(no("TLS is already active"))
                if is_authenticated or not self.is_starttls_offered:
                    return self._error(no("STARTTLS not available"))
                return self._reply_to(StartTls())
            case "AUTHENTICATE":
                if is_authenticated:
                    return self._error(no("already authenticated"))
                return self._authenticate(arguments)
        if not is_authenticated:
            if name in _AUTHENTICATED_ONLY:
                return self._error(no("authenticate first"))
            return self._error(UNKNOWN_COMMAND)
        match name:
            case "UNAUTHENTICATE":
                _shape(name, arguments, 0)
                return self._reply_to(Unauthenticate())
            case "HAVESPACE":
                _shape(name, arguments, 2)
                size = arguments[1]
                if not isinstance(size, int):
                    raise _CommandError(no("HAVESPACE needs a script name and a size"))
                return self._reply_to(HaveSpace(name=self._name(arguments[0]), size=size))
            case "PUTSCRIPT":
                _shape(name, arguments, 2)
                return self._reply_to(PutScript(name=self._name(arguments[0]), source=_text(arguments[1], "script")))
            case "CHECKSCRIPT":
                _shape(name, arguments, 1)
                return self._reply_to(CheckScript(source=_text(arguments[0], "script")))
            case "LISTSCRIPTS":
                _shape(name, arguments, 0)
                return self._reply_to(ListScripts())
            case "SETACTIVE":
                _shape(name, arguments, 1)
                script = _text(arguments[0], "script name")
                return self._reply_to(SetActive(name=self._name(arguments[0]) if script else ""))
            case "GETSCRIPT":
                _shape(name, arguments, 1)
                return self._reply_to(GetScript(name=self._name(arguments[0])))
            case "DELETESCRIPT":
                _shape(name, arguments, 1)
                return self._reply_to(DeleteScript(name=self._name(arguments[0])))
            case "RENAMESCRIPT":
                _shape(name, arguments, 2)
                return self._reply_to(RenameScript(old=self._name(arguments[0]), new=self._name(arguments[1])))
        return self._error(UNKNOWN_COMMAND)

    def _authenticate(self, arguments: list[Token]) -> Event:
        if not 1 <= len(arguments) <= 2:
            return self._error(no("AUTHENTICATE needs a mechanism and at most an initial response"))
        mechanism = _text(arguments[0], "mechanism").upper()
        if mechanism not in self.mechanisms:
            return self._error(no("unknown SASL mechanism"))
        if mechanism not in self.offered_mechanisms:
            return self._error(ENCRYPT_NEEDED)
        initial = _base64(_text(arguments[1], "initial response")) if len(arguments) == 2 else None
        return self._reply_to(Authenticate(mechanism=mechanism, initial_response=initial))

    def _auth_response(self, tokens: list[Token]) -> Event:
        self.state = State.NON_AUTHENTICATED  # unless the response is good, the exchange ends here
        if len(tokens) != 1 or not isinstance(tokens[0], _String):
            return self._error(no("a SASL response is one string"))
        text = _text(tokens[0], "SASL response")
        if text == "*":
            self.state = State.AUTH
            return self._reply_to(AuthCancelled())  # RFC 5804 §2.1
        data = _base64(text)
        self.state = State.AUTH
        return self._reply_to(AuthResponse(data=data))

    def _name(self, token: Token) -> str:
        name = _text(token, "script name")
        if not name:
            raise _CommandError(no("a script name cannot be empty"))
        if len(name.encode()) > self.limits.max_name:
            raise _CommandError(no("script name too long"))
        if _BAD_NAME.search(name):
            raise _CommandError(no("control characters are not allowed in script names"))  # RFC 5804 §1.6
        return name

    def _reply_to(self, event: Command) -> Command:
        self._pending = event
        return event

    def _error(self, reply: Reply) -> Command:
        self.error_count += 1
        if self.error_count > self.limits.max_errors:
            reply = TOO_MANY_ERRORS
            self._is_closing = True
        return self._reply_to(InvalidCommand(reply=reply))


_AUTHENTICATED_ONLY = frozenset(
    {
        "UNAUTHENTICATE",
        "HAVESPACE",
        "PUTSCRIPT",
        "CHECKSCRIPT",
        "LISTSCRIPTS",
        "SETACTIVE",
        "GETSCRIPT",
        "DELETESCRIPT",
        "RENAMESCRIPT",
    }
)


def _shape(name: str, arguments: list[Token], count: int) -> None:
    if len(arguments) != count:
        raise _CommandError(no(f"{name} takes {count} argument{'s' if count != 1 else ''}"))


def _text(token: Token, what: str) -> str:
    if not isinstance(token, _String):
        raise _CommandError(no(f"the {what} must be a string"))
    try:
        return token.value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _CommandError(no(f"the {what} is not UTF-8")) from exc


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _CommandError(no("invalid base64")) from exc
