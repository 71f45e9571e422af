"""The server side of IMAP as a sans-IO state machine (RFC 9051, RFC 3501 and the extensions).

The application feeds bytes with :meth:`ServerConnection.receive_data`, pulls events with
:meth:`ServerConnection.next_event` and answers with :meth:`ServerConnection.send`, which returns the
bytes to write. One command is served at a time: after a command event the core pauses until the
application sends its tagged completion, and learns the session state from it (a tagged OK to LOGIN
means authenticated, to SELECT means selected). Untagged responses may be sent at any time.
"""

from __future__ import annotations

import datetime
import enum
import re

from . import commands as c
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
from .parse import (
    COMMAND_NAMES,
    SEARCH_CHARSETS,
    BadCharset,
    Options,
    append_options,
    decode_base64,
    mailbox,
    parse_arguments,
    split_command,
)
from .responses import (
    Code,
    Condition,
    Continuation,
    EnabledData,
    RecentData,
    Response,
    Status,
    Tagged,
    render,
)
from .tokens import ParseError, Reader


class LocalProtocolError(Exception):
    """The application used the connection wrongly (a completion out of turn, a continuation unasked)."""


class State(enum.Enum):
    """RFC 9051 §3."""

    NOT_AUTHENTICATED = enum.auto()
    AUTHENTICATED = enum.auto()
    SELECTED = enum.auto()
    LOGOUT = enum.auto()


class _Mode(enum.Enum):
    COMMAND = enum.auto()  # reading the lines of a command
    LITERAL = enum.auto()  # reading a literal into the command being assembled
    WAIT = enum.auto()  # the application must answer (see _Wait)
    MESSAGE = enum.auto()  # streaming an APPEND message
    APPEND_NEXT = enum.auto()  # after a message: another one (RFC 3502) or the end of APPEND
    AUTH = enum.auto()  # reading a SASL response line (RFC 9051 §6.2.2)
    IDLE = enum.auto()  # reading DONE (RFC 2177 §3)
    DISCARD_LINE = enum.auto()  # dropping the rest of a refused command line
    DISCARD_LITERAL = enum.auto()  # dropping the octets of a refused non-synchronising literal
    TLS = enum.auto()  # STARTTLS answered OK, waiting for tls_established()
    CLOSED = enum.auto()


class _Wait(enum.Enum):
    COMPLETION = enum.auto()  # a tagged response
    LITERAL = enum.auto()  # Continuation to read a literal, or tagged to refuse the command
    MESSAGE = enum.auto()  # Continuation to read an APPEND message, or tagged
    AUTH = enum.auto()  # Continuation with a SASL challenge, or tagged
    IDLE = enum.auto()  # Continuation to start idling, or tagged


class _TooLong(Exception):
    pass


_ANY_STATE = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})  # RFC 9051 §6.1, RFC 2971
_NOT_AUTHENTICATED = _ANY_STATE | {"STARTTLS", "AUTHENTICATE", "LOGIN"}  # RFC 9051 §6.2
_MAILBOX_COMMANDS = frozenset(
    {"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB"}
    | {"NAMESPACE", "STATUS", "APPEND", "IDLE"}
    | {"GETQUOTA", "GETQUOTAROOT", "SETQUOTA"}
)  # RFC 9051 §6.3, RFC 2177, RFC 9208
_AUTHENTICATED = _ANY_STATE | _MAILBOX_COMMANDS | {"ENABLE"}  # RFC 9051 §6.3.1: ENABLE before SELECT only
_SELECTED = (
    _ANY_STATE
    | _MAILBOX_COMMANDS
    | {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"}
    | {"UID EXPUNGE", "UID SEARCH", "UID FETCH", "UID STORE", "UID COPY", "UID MOVE"}
)  # RFC 9051 §6.4
_ALLOWED = {
    State.NOT_AUTHENTICATED: _NOT_AUTHENTICATED,
    State.AUTHENTICATED: _AUTHENTICATED,
    State.SELECTED: _SELECTED,
    State.LOGOUT: frozenset[str](),
}
_MARKER = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")  # RFC 9051 §9 literal, RFC 7888 §3, RFC 3516 literal8
_TAG = re.compile(rb"([^\x00-\x20\x7f-\xff(){%*\"\\+]+) ")
_BAD_CHARSET = Code(name="BADCHARSET", value=b"(%b)" % " ".join(SEARCH_CHARSETS).encode())  # RFC 9051 §7.1


class ServerConnection:
    def __init__(self, *, limits: Limits | None = None, is_tls: bool = False) -> None:
        self.limits = limits or Limits()
        self.state = State.NOT_AUTHENTICATED
        self.is_tls = is_tls
        self.enabled: set[str] = set()  # upper-cased, from ENABLED responses sent or enable()
        self.error_count = 0
        self._buffer = bytearray()
        self._is_eof = False
        self._mode = _Mode.COMMAND
        self._wait = _Wait.COMPLETION
        self._command = bytearray()  # the command assembled so far, literals inline
        self._tag: str | None = None  # the tag of the command in progress
        self._current: c.CommandType | None = None
        self._remaining = 0  # octets left of the literal being read or dropped
        self._tail = b""  # the end of a line being dropped, to see a literal announced there
        self._error: InvalidCommand | None = None  # to report once a refused command is dropped
        self._append_mailbox = ""
        self._append_count = 0

    # ---- what the client enabled ----------------------------------------------------------------

    def enable(self, *capabilities: str) -> None:
        """Record capabilities as enabled (sending an :class:`EnabledData` does the same)."""
        self.enabled.update(capability.upper() for capability in capabilities)

    @property
    def is_utf8(self) -> bool:
        """Mailbox names in UTF-8: UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §6.3.1)."""
        return bool(self.enabled & {"UTF8=ACCEPT", "IMAP4REV2"})

    @property
    def is_rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    def _options(self) -> Options:
        return Options(is_utf8=self.is_utf8, is_qresync="QRESYNC" in self.enabled)

    # ---- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means the peer closed its side."""
        if self._is_eof:
            raise LocalProtocolError("data received after EOF")
        if not data:
            self._is_eof = True
        elif self._mode is not _Mode.TLS:  # plaintext after STARTTLS is never read (RFC 9051 §6.2.1)
            self._buffer += data

    def next_event(self) -> Event:
        while True:
            event = self._step()
            if event is not None:
                return event

    def _step(self) -> Event | None:
        match self._mode:
            case _Mode.CLOSED:
                return ConnectionClosed()
            case _Mode.WAIT:
                return Paused()
            case _Mode.TLS:
                return self._need_data() if self._is_eof else Paused()
            case _Mode.COMMAND:
                return self._read_command()
            case _Mode.LITERAL:
                return self._read_literal()
            case _Mode.MESSAGE:
                return self._read_message()
            case _Mode.APPEND_NEXT:
                return self._read_append_next()
            case _Mode.AUTH:
                return self._read_auth()
            case _Mode.IDLE:
                return self._read_idle()
            case _Mode.DISCARD_LINE:
                return self._discard_line()
            case _Mode.DISCARD_LITERAL:
                return self._discard_literal()

    # ---- output ---------------------------------------------------------------------------------

    def send(self, response: Response) -> bytes:
        """Render ``response``; a tagged one completes the command in progress. Returns the bytes to write."""
        if self._mode is _Mode.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if isinstance(response, RecentData) and self.is_rev2:
            raise LocalProtocolError("IMAP4rev2 has no RECENT response")  # RFC 9051 Appendix E
        data = render(response, is_utf8=self.is_utf8)
        match response:
            case Tagged():
                self._complete(response)
            case Continuation():
                self._continue()
            case Condition(status=Status.BYE):  # RFC 9051 §7.1.5
                self.state = State.LOGOUT
                if not isinstance(self._current, c.Logout):
                    self._mode = _Mode.CLOSED
            case Condition(status=Status.PREAUTH):  # RFC 9051 §7.1.4 greeting
                self.state = State.AUTHENTICATED
            case Condition(status=Status.BAD) if self._is_waiting_untagged():
                self._reset()  # the reply to an InvalidCommand without a usable tag
            case EnabledData(capabilities=capabilities):
                self.enable(*capabilities)
            case _:
                pass
        return data

    def tls_established(self) -> None:
        """TLS is up after STARTTLS; read commands again."""
        if self._mode is not _Mode.TLS:
            raise LocalProtocolError("no STARTTLS in progress")
        self.is_tls = True
        self._buffer.clear()
        self._mode = _Mode.COMMAND

    def _is_waiting_untagged(self) -> bool:
        return self._mode is _Mode.WAIT and self._tag is None and self._wait is _Wait.COMPLETION

    def _complete(self, response: Tagged) -> None:
        if self._mode is not _Mode.WAIT or self._tag != response.tag:
            raise LocalProtocolError(f"no command {response.tag!r} waits for completion")
        if response.status not in (Status.OK, Status.NO, Status.BAD):
            raise LocalProtocolError(f"a tagged response cannot be {response.status.value}")
        if response.status is Status.OK and self._wait in (_Wait.LITERAL, _Wait.MESSAGE):
            raise LocalProtocolError("cannot complete a command whose literal was not read")
        is_ok = response.status is Status.OK
        command = self._current
        self._reset()
        match command:
            case c.Login() | c.Authenticate() if is_ok:
                self.state = State.AUTHENTICATED
            case c.Select() if is_ok:
                self.state = State.SELECTED
            case c.Select() if response.status is Status.NO and self.state is State.SELECTED:
                self.state = State.AUTHENTICATED  # RFC 9051 §6.3.2: a failed SELECT closes the mailbox
            case c.Close() | c.Unselect() if is_ok:
                self.state = State.AUTHENTICATED
            case c.Logout():
                self.state = State.LOGOUT
                self._mode = _Mode.CLOSED
            case c.StartTls() if is_ok:
                self._buffer.clear()  # RFC 9051 §6.2.1: nothing pipelined after STARTTLS is kept
                self._mode = _Mode.TLS
            case _:
                pass
        if self.state is State.LOGOUT:
            self._mode = _Mode.CLOSED

    def _continue(self) -> None:
        if self._mode is not _Mode.WAIT or self._wait is _Wait.COMPLETION:
            raise LocalProtocolError("no command waits for a continuation")
        self._mode = {
            _Wait.LITERAL: _Mode.LITERAL,
            _Wait.MESSAGE: _Mode.MESSAGE,
            _Wait.AUTH: _Mode.AUTH,
            _Wait.IDLE: _Mode.IDLE,
        }[self._wait]

    def _reset(self) -> None:
        self._mode = _Mode.COMMAND
        self._wait = _Wait.COMPLETION
        self._tag = None
        self._current = None
        self._command.clear()
        self._remaining = 0
        self._error = None
        self._append_count = 0

    # ---- commands -------------------------------------------------------------------------------

    def _read_command(self) -> Event | None:
        try:
            line = self._take_line(self.limits.max_command - len(self._command))
        except _TooLong:
            tag = _tag_of(bytes(self._command[:100] or self._buffer[:100]))
            return self._discard(tag, "command line too long")
        if line is None:
            return self._need_data()
        self._command += line
        marker = _MARKER.search(line)
        if marker is None:
            return self._command_complete(bytes(self._command))
        self._command += b"\r\n"
        return self._literal_announced(marker)

    def _command_complete(self, data: bytes) -> Event:
        if not data:
            return self._fail(None, "empty command line")
        reader = Reader(data)
        try:
            tag, name = split_command(reader)
        except ParseError as exc:
            return self._fail(_tag_of(data), exc.reason)
        refusal = self._refusal(name)
        if refusal is not None:
            return self._fail(tag, refusal)
        if name == "APPEND":
            return self._fail(tag, "APPEND needs a message literal")
        try:
            command = parse_arguments(name, reader, self._options())
        except BadCharset:  # RFC 9051 §6.4.4: NO, not BAD
            return self._fail(tag, "unsupported charset", status=Status.NO, code=_BAD_CHARSET)
        except ParseError as exc:
            return self._fail(tag, exc.reason)
        self._mode = _Mode.WAIT
        self._wait = _Wait.COMPLETION
        self._tag = tag
        self._current = command
        if isinstance(command, c.Authenticate):
            self._wait = _Wait.AUTH
        elif isinstance(command, c.Idle):
            self._wait = _Wait.IDLE
        self._command.clear()
        return Command(tag=tag, command=command)

    def _refusal(self, name: str) -> str | None:
        if name not in COMMAND_NAMES:
            return f"unknown command {name[:30]}"
        if name not in _ALLOWED[self.state]:
            return f"{name} is not allowed in state {self.state.name}"  # RFC 9051 §3
        return None

    def _literal_announced(self, marker: re.Match[bytes]) -> Event | None:
        is_binary, size, is_sync = bool(marker.group(1)), int(marker.group(2)), not marker.group(3)
        head = bytes(self._command[: len(self._command) - len(marker.group()) - 2])
        reader = Reader(head)
        try:
            tag, name = split_command(reader)
        except ParseError as exc:
            return self._refuse_literal(_tag_of(head), exc.reason, size=size, is_sync=is_sync)
        refusal = self._refusal(name)
        if refusal is None and not is_sync and size > (self.limits.max_nonsync_literal or size):
            refusal = "non-synchronizing literal too large"  # RFC 7888 §5 (LITERAL-)
        if refusal is not None:
            return self._refuse_literal(tag, refusal, size=size, is_sync=is_sync)
        if name == "APPEND" and reader.data[reader.position :] != b" ":  # else the mailbox is the literal
            return self._first_message(reader, tag=tag, size=size, is_sync=is_sync, is_binary=is_binary)
        if is_binary:
            return self._refuse_literal(tag, "literal8 is only allowed in APPEND", size=size, is_sync=is_sync)
        if len(self._command) + size > self.limits.max_command:
            return self._refuse_literal(tag, "command too long", size=size, is_sync=is_sync)
        self._tag = tag
        self._remaining = size
        if is_sync:  # RFC 9051 §7.5: the client waits for "+"
            self._mode = _Mode.WAIT
            self._wait = _Wait.LITERAL
            return LiteralStart(tag=tag, size=size)
        self._mode = _Mode.LITERAL
        return None

    def _read_literal(self) -> Event | None:
        taken = self._take(self._remaining)
        self._command += taken
        if self._remaining:
            return self._need_data()
        self._mode = _Mode.COMMAND
        return None

    # ---- APPEND (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND, RFC 3516 §4.4 literal8) ----------------------

    def _first_message(self, reader: Reader, *, tag: str, size: int, is_sync: bool, is_binary: bool) -> Event | None:
        try:
            reader.space()
            self._append_mailbox = mailbox(reader, self._options())
            flags, date = append_options(reader)
        except ParseError as exc:
            return self._refuse_literal(tag, exc.reason, size=size, is_sync=is_sync)
        self._tag = tag
        self._append_count = 0
        return self._message_announced(flags, date, size=size, is_sync=is_sync, is_binary=is_binary)

    def _message_announced(
        self,
        flags: tuple[str, ...],
        date: datetime.datetime | None,
        *,
        size: int,
        is_sync: bool,
        is_binary: bool,
    ) -> Event | None:
        tag = self._tag
        assert tag is not None
        self._append_count += 1
        self._command.clear()
        if size > self.limits.max_append:  # RFC 7889 §4: NO [TOOBIG]
            return self._refuse_literal(
                tag, "message too large", size=size, is_sync=is_sync, status=Status.NO, code=Code(name="TOOBIG")
            )
        if self._append_count > self.limits.max_append_messages:
            return self._refuse_literal(tag, "too many messages in one APPEND", size=size, is_sync=is_sync)
        self._remaining = size
        if is_sync:
            self._mode = _Mode.WAIT
            self._wait = _Wait.MESSAGE
        else:
            self._mode = _Mode.MESSAGE
        return AppendStart(
            tag=tag,
            mailbox=self._append_mailbox,
            flags=flags,
            date=date,
            size=size,
            is_binary=is_binary,
            is_sync=is_sync,
            index=self._append_count,
        )

    def _read_message(self) -> Event | None:
        if not self._remaining:
            self._mode = _Mode.APPEND_NEXT
            return LiteralEnd()
        data = self._take(self._remaining)
        return LiteralChunk(data=data) if data else self._need_data()

    def _read_append_next(self) -> Event | None:
        tag = self._tag
        assert tag is not None
        try:
            line = self._take_line(self.limits.max_command)
        except _TooLong:
            return self._discard(tag, "APPEND line too long")
        if line is None:
            return self._need_data()
        if not line:
            self._mode = _Mode.WAIT
            self._wait = _Wait.COMPLETION
            return AppendEnd(tag=tag, count=self._append_count)
        marker = _MARKER.search(line)
        if marker is None:
            return self._fail(tag, "expected another message or the end of APPEND")
        is_binary, size, is_sync = bool(marker.group(1)), int(marker.group(2)), not marker.group(3)
        try:
            flags, date = append_options(Reader(line[: marker.start()]))
        except ParseError as exc:
            return self._refuse_literal(tag, exc.reason, size=size, is_sync=is_sync)
        return self._message_announced(flags, date, size=size, is_sync=is_sync, is_binary=is_binary)

    # ---- AUTHENTICATE and IDLE ----------------------------------------------------------------------

    def _read_auth(self) -> Event | None:
        tag = self._tag
        assert tag is not None
        try:
            line = self._take_line(self.limits.max_command)
        except _TooLong:
            return self._discard(tag, "SASL response too long")
        if line is None:
            return self._need_data()
        self._mode = _Mode.WAIT
        if line == b"*":  # RFC 9051 §6.2.2: the client cancels; answer BAD
            self._wait = _Wait.COMPLETION
            return AuthCancelled(tag=tag)
        try:
            data = decode_base64(line)
        except ParseError:
            return self._fail(tag, "SASL response is not base64")  # RFC 9051 §6.2.2
        self._wait = _Wait.AUTH
        return AuthResponse(tag=tag, data=data)

    def _read_idle(self) -> Event | None:
        tag = self._tag
        assert tag is not None
        try:
            line = self._take_line(self.limits.max_command)
        except _TooLong:
            return self._discard(tag, "expected DONE")
        if line is None:
            return self._need_data()
        if line.upper() != b"DONE":  # RFC 2177 §3
            return self._fail(tag, "expected DONE")
        self._mode = _Mode.WAIT
        self._wait = _Wait.COMPLETION
        return Done(tag=tag)

    # ---- refusals -------------------------------------------------------------------------------

    def _fail(self, tag: str | None, reason: str, *, status: Status = Status.BAD, code: Code | None = None) -> Event:
        self._reset()
        self.error_count += 1
        self._mode = _Mode.WAIT
        self._tag = tag
        reply: Tagged | Condition
        if tag is None:
            reply = Condition(status=Status.BAD, text=reason, code=code)  # RFC 9051 §7.1.3: untagged BAD
        else:
            reply = Tagged(tag=tag, status=status, text=reason, code=code)
        return InvalidCommand(tag=tag, reply=reply, is_fatal=self.error_count >= self.limits.max_errors)

    def _refuse_literal(
        self,
        tag: str | None,
        reason: str,
        *,
        size: int,
        is_sync: bool,
        status: Status = Status.BAD,
        code: Code | None = None,
    ) -> Event | None:
        """Refuse the command at an announced literal: the client sends a non-synchronising one anyway."""
        if is_sync:
            return self._fail(tag, reason, status=status, code=code)
        self._error = InvalidCommand(tag=tag, reply=Tagged(tag=tag or "*", status=status, text=reason, code=code))
        self._tag = tag
        self._remaining = size
        self._mode = _Mode.DISCARD_LITERAL
        return None

    def _discard(self, tag: str | None, reason: str) -> Event | None:
        """Drop the rest of the line (and literals announced on it), then report ``reason``."""
        self._error = InvalidCommand(tag=tag, reply=Tagged(tag=tag or "*", status=Status.BAD, text=reason))
        self._tag = tag
        self._tail = b""
        self._mode = _Mode.DISCARD_LINE
        return None

    def _discard_literal(self) -> Event | None:
        self._take(self._remaining)
        if self._remaining:
            return self._need_data()
        self._tail = b""
        self._mode = _Mode.DISCARD_LINE
        return None

    def _discard_line(self) -> Event | None:
        buffer = self._buffer
        newline = buffer.find(b"\n")
        if newline == -1:
            self._tail = (self._tail + bytes(buffer[-32:]))[-32:]
            buffer.clear()
            return self._need_data()
        tail = (self._tail + bytes(buffer[max(0, newline - 32) : newline]))[-32:]
        del buffer[: newline + 1]
        marker = _MARKER.search(tail.removesuffix(b"\r"))
        if marker is not None and marker.group(3):  # more octets follow unasked
            self._remaining = int(marker.group(2))
            self._mode = _Mode.DISCARD_LITERAL
            return None
        error = self._error
        assert error is not None
        return self._fail(error.tag, error.reply.text, status=error.reply.status, code=error.reply.code)

    # ---- buffer ---------------------------------------------------------------------------------

    def _take_line(self, limit: int) -> bytes | None:
        """A line without its CRLF (a bare LF is tolerated), None if incomplete; _TooLong past ``limit``."""
        newline = self._buffer.find(b"\n")
        if newline == -1:
            if len(self._buffer) > limit:
                raise _TooLong
            return None
        if newline > limit:
            raise _TooLong
        line = bytes(self._buffer[:newline])
        del self._buffer[: newline + 1]
        return line.removesuffix(b"\r")

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._remaining -= len(data)
        return data

    def _need_data(self) -> Event:
        if self._is_eof:
            self._mode = _Mode.CLOSED
            return ConnectionClosed()
        return NeedData()


def _tag_of(data: bytes) -> str | None:
    match = _TAG.match(data)
    return match.group(1).decode("ascii") if match else None
