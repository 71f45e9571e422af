"""The server side of SMTP as a sans-IO state machine (RFC 5321, with ESMTP extensions).

The application feeds bytes with :meth:`ServerConnection.receive_data`, pulls events with
:meth:`ServerConnection.next_event` and answers each command event with :meth:`ServerConnection.send`,
which returns the bytes to write. The core checks command order itself and reports a peer's mistakes
as :class:`InvalidCommand` events; it learns the outcome of each command from the reply the
application sends (a RCPT answered 250 is an accepted recipient).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pochta.proto.lines import TooLong, take_line

from .content import ChunkReader, DataReader, HeaderMeter
from .events import (
    Auth,
    AuthCancelled,
    AuthResponse,
    Bdat,
    BdatEnd,
    Body,
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
    Rset,
    StartTls,
    Vrfy,
)
from .limits import Extensions, Limits
from .parse import (
    CommandError,
    Offer,
    decode_base64,
    parse_auth,
    parse_bdat,
    parse_ehlo,
    parse_mail,
    parse_rcpt,
    split_command,
)
from .replies import (
    AUTH_MECHANISM_UNKNOWN,
    BAD_SEQUENCE,
    CONTROL_CHARACTER,
    LINE_TOO_LONG,
    NO_VALID_RECIPIENTS,
    NOT_IMPLEMENTED,
    NOT_UTF8,
    STARTTLS_FIRST,
    TOO_MANY_ERRORS,
    TOO_MANY_RECIPIENTS,
    UNKNOWN_COMMAND,
    Reply,
    syntax_error,
)


class LocalProtocolError(Exception):
    """The application used the connection wrongly (a reply out of turn, a wrong reply code)."""


class State(enum.Enum):
    CONNECTED = enum.auto()  # waiting for the application's greeting
    GREETED = enum.auto()  # 220 sent, waiting for EHLO/HELO
    READY = enum.auto()  # EHLO/HELO done, no transaction
    MAIL = enum.auto()  # MAIL accepted: RCPT, then DATA or BDAT
    DATA = enum.auto()  # reading DATA content after 354
    BDAT = enum.auto()  # reading a BDAT chunk
    AUTH = enum.auto()  # in a SASL exchange: the next line is a response (RFC 4954 §4)
    TLS = enum.auto()  # 220 sent to STARTTLS, waiting for tls_established()
    REFUSED = enum.auto()  # 554 greeting: only QUIT is served (RFC 5321 §3.1)
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Greeting:
    """The connection itself, waiting for the 220 (or 554/421) banner."""


_Pending = Event | _Greeting

# Positive codes the application may send to each event; 4xx and 5xx are always allowed but for QUIT.
_POSITIVE: dict[type, frozenset[int]] = {
    _Greeting: frozenset({220}),
    Ehlo: frozenset({250}),
    MailFrom: frozenset({250}),
    RcptTo: frozenset({250, 251}),  # RFC 5321 §4.1.1.3, §3.4
    Data: frozenset({354}),
    DataEnd: frozenset({250}),
    BdatEnd: frozenset({250}),
    StartTls: frozenset({220}),  # RFC 3207 §4
    Auth: frozenset({235, 334}),  # RFC 4954 §4
    AuthResponse: frozenset({235, 334}),
    AuthCancelled: frozenset(),
    Rset: frozenset({250}),
    Noop: frozenset({250}),
    Quit: frozenset({221}),
    Help: frozenset({211, 214}),
    Vrfy: frozenset({250, 251, 252}),  # RFC 5321 §3.5.3
    Expn: frozenset({250, 252}),
    InvalidCommand: frozenset(range(200, 400)),
}

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # any control but TAB; a search, not a loop per octet


class ServerConnection:
    def __init__(
        self,
        *,
        hostname: str,
        limits: Limits | None = None,
        extensions: Extensions | None = None,
        is_tls: bool = False,
    ) -> None:
        self.hostname = hostname
        self.limits = limits or Limits()
        self.extensions = extensions or Extensions()
        self.state = State.CONNECTED
        self.is_tls = is_tls  # implicit TLS (port 465, RFC 8314) or after STARTTLS
        self.is_authenticated = False
        self.ehlo: Ehlo | None = None
        self.mail: MailFrom | None = None  # the accepted MAIL of the open transaction
        self.recipient_count = 0  # recipients accepted in the open transaction
        self.error_count = 0
        self._buffer = bytearray()
        self._is_eof = False
        self._pending: _Pending | None = _Greeting()
        self._is_discarding_line = False
        self._is_bdat_used = False
        self._bdat_size = 0
        self._bdat_header = HeaderMeter()
        self._data: DataReader | None = None
        self._chunk: ChunkReader | None = None
        self._chunk_is_last = False
        self._chunk_error: Reply | None = None  # a refused BDAT: its chunk is read and dropped
        self._state_after_chunk = State.READY

    # ---- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means the peer closed its side."""
        if self._is_eof:
            raise LocalProtocolError("data received after EOF")
        if not data:
            self._is_eof = True
        elif self.state is State.TLS:
            return  # plaintext after STARTTLS is never read (RFC 3207 §4.2, CVE-2011-0411)
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
            if self.state is State.DATA:
                event = self._next_data_event()
            elif self.state is State.BDAT:
                event = self._next_chunk_event()
            else:
                event = self._next_command_event()
            if event is not None:
                return event

    # ---- output ---------------------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """Answer the pending event (or close with an unsolicited 421); return the bytes to write."""
        if self.state is State.CLOSED:
            raise LocalProtocolError("the connection is closed")
        pending = self._pending
        if pending is None:
            if reply.code != 421:  # RFC 5321 §3.8: 421 may close the session at any time
                raise LocalProtocolError(f"no command waits for a reply in state {self.state.name}")
            self.state = State.CLOSED
            return reply.to_bytes()
        if reply.is_positive and reply.code not in _POSITIVE[type(pending)]:
            raise LocalProtocolError(f"cannot answer {type(pending).__name__} with {reply.code}")
        if isinstance(pending, Quit) and reply.code != 221:
            raise LocalProtocolError("QUIT is answered 221")  # RFC 5321 §4.1.1.10
        self._pending = None
        self._apply(pending, reply)
        if reply.code == 421:  # RFC 5321 §3.8
            self.state = State.CLOSED
        return reply.to_bytes()

    def ehlo_reply(self) -> Reply:
        """The 250 reply to the pending EHLO (with the extension keywords) or HELO."""
        if not isinstance(self._pending, Ehlo):
            raise LocalProtocolError("no EHLO or HELO waits for a reply")
        if not self._pending.is_extended:
            return Reply(code=250, text=self.hostname)
        return Reply(code=250, text=(self.hostname, *self._keywords()))  # RFC 5321 §4.1.1.1

    def tls_established(self) -> None:
        """TLS is up after STARTTLS: forget the session, as if just greeted (RFC 3207 §4.2)."""
        if self.state is not State.TLS:
            raise LocalProtocolError(f"no STARTTLS in progress in state {self.state.name}")
        self._buffer.clear()
        self.is_tls = True
        self.is_authenticated = False
        self.ehlo = None
        self._reset_transaction()
        self.state = State.GREETED

    # ---- what we offer --------------------------------------------------------------------------

    @property
    def is_auth_offered(self) -> bool:
        extensions = self.extensions
        return bool(extensions.auth_mechanisms) and (self.is_tls or not extensions.is_auth_tls_only)

    def _keywords(self) -> list[str]:
        extensions = self.extensions
        keywords: list[str] = []
        if extensions.pipelining:
            keywords.append("PIPELINING")
        if extensions.size:
            keywords.append(f"SIZE {self.limits.max_message_size}")
        if extensions.eight_bit_mime:
            keywords.append("8BITMIME")
        if extensions.smtputf8:
            keywords.append("SMTPUTF8")
        if extensions.chunking:
            keywords.append("CHUNKING")
            if extensions.binary_mime:
                keywords.append("BINARYMIME")  # RFC 3030 §3: requires CHUNKING
        if extensions.dsn:
            keywords.append("DSN")
        if extensions.enhanced_status_codes:
            keywords.append("ENHANCEDSTATUSCODES")
        if extensions.starttls and not self.is_tls:
            keywords.append("STARTTLS")  # RFC 3207 §4.2: not offered again after TLS
        if self.is_auth_offered and not self.is_authenticated:
            keywords.append("AUTH " + " ".join(extensions.auth_mechanisms))
        return keywords

    def _offer(self) -> Offer:
        extensions = self.extensions
        if self.ehlo is None or not self.ehlo.is_extended:
            return Offer(params=frozenset(), bodies=frozenset(), max_message_size=None)  # RFC 5321 §4.1.1.1
        params: set[str] = set()
        bodies: set[Body] = set()
        if extensions.size:
            params.add("SIZE")
        if extensions.eight_bit_mime:
            bodies |= {Body.SEVEN_BIT, Body.EIGHT_BIT_MIME}
        if extensions.chunking and extensions.binary_mime:
            bodies |= {Body.SEVEN_BIT, Body.BINARY_MIME}
        if bodies:
            params.add("BODY")
        if extensions.smtputf8:
            params.add("SMTPUTF8")
        if extensions.dsn:
            params |= {"RET", "ENVID", "NOTIFY", "ORCPT"}
        if self.is_auth_offered:
            params.add("AUTH")  # RFC 4954 §5
        max_size = self.limits.max_message_size if extensions.size else None
        return Offer(params=frozenset(params), bodies=frozenset(bodies), max_message_size=max_size)

    # ---- replies change the state ---------------------------------------------------------------

    def _apply(self, pending: _Pending, reply: Reply) -> None:
        is_positive = reply.is_positive
        match pending:
            case _Greeting():
                self.state = State.GREETED if is_positive else State.REFUSED  # RFC 5321 §3.1
            case Ehlo() if is_positive:
                self.ehlo = pending
                self._reset_transaction()  # RFC 5321 §4.1.4: EHLO resets like RSET
                self.state = State.READY
            case MailFrom() if is_positive:
                self.mail = pending
                self.state = State.MAIL
            case RcptTo() if is_positive:
                self.recipient_count += 1
            case Data() if is_positive:
                self._data = DataReader()
                self.state = State.DATA
            case DataEnd():
                self._reset_transaction()  # RFC 5321 §4.1.1.4: the transaction ends either way
            case BdatEnd():
                if pending.is_last or not is_positive:  # RFC 3030 §2: a failed chunk ends it
                    self._reset_transaction()
            case StartTls() if is_positive:
                self._buffer.clear()  # pipelined plaintext must not survive into TLS (CVE-2011-0411)
                self.state = State.TLS
            case Auth() | AuthResponse():
                if reply.code == 334:
                    self.state = State.AUTH
                else:
                    self.is_authenticated = reply.code == 235
                    self.state = State.READY
            case AuthCancelled():
                self.state = State.READY
            case Rset() if is_positive:
                self._reset_transaction()
            case Quit():
                self.state = State.CLOSED
            case _:
                pass

    def _reset_transaction(self) -> None:
        self.mail = None
        self.recipient_count = 0
        self._is_bdat_used = False
        self._bdat_size = 0
        self._bdat_header = HeaderMeter()
        self._data = None
        self._chunk = None
        if self.state in (State.MAIL, State.DATA, State.BDAT):
            self.state = State.READY

    # ---- commands -------------------------------------------------------------------------------

    def _next_command_event(self) -> Event | None:
        line = self._take_line()
        if line is None:
            if self._is_eof:
                self.state = State.CLOSED
                return ConnectionClosed()
            return NeedData()
        if line is LINE_TOO_LONG:
            if self.state is State.AUTH:
                self.state = State.READY
            return self._error(LINE_TOO_LONG)
        assert isinstance(line, bytes)
        if _CONTROL.search(line):
            return self._error(CONTROL_CHARACTER)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self._error(NOT_UTF8)
        if self.state is State.AUTH:
            return self._auth_response(text)
        verb, argument = split_command(text)
        if self.state is State.REFUSED and verb != "QUIT":
            return self._error(BAD_SEQUENCE)  # RFC 5321 §3.1: after a 554 greeting only QUIT
        if verb != "AUTH" and len(line) + 2 > self.limits.max_command_line:
            return self._error(LINE_TOO_LONG)  # the longer AUTH limit let this line through
        try:
            return self._command(verb, argument)
        except CommandError as exc:
            return self._error(exc.reply)

    def _take_line(self) -> bytes | Reply | None:
        """A line without its line ending, LINE_TOO_LONG, or None when no whole line is buffered."""
        line, self._is_discarding_line = take_line(
            self._buffer, limit=self._line_limit(), is_discarding=self._is_discarding_line
        )
        return LINE_TOO_LONG if line is TooLong.LINE else line

    def _line_limit(self) -> int:
        if self.state is State.AUTH:
            return self.limits.max_auth_line
        if self.extensions.auth_mechanisms:
            return max(self.limits.max_command_line, self.limits.max_auth_line)
        return self.limits.max_command_line

    def _command(self, verb: str, argument: str) -> Event | None:
        match verb:
            case "EHLO" | "HELO":
                return self._reply_to(Ehlo(name=parse_ehlo(argument), is_extended=verb == "EHLO"))
            case "MAIL":
                return self._mail(argument)
            case "RCPT":
                return self._rcpt(argument)
            case "DATA":
                return self._data_command(argument)
            case "BDAT":
                return self._bdat(argument)
            case "RSET":
                _no_argument(verb, argument)
                return self._reply_to(Rset())
            case "NOOP":
                return self._reply_to(Noop())  # RFC 5321 §4.1.1.9: an argument is ignored
            case "QUIT":
                _no_argument(verb, argument)
                return self._reply_to(Quit())
            case "HELP":
                return self._reply_to(Help(topic=argument))
            case "VRFY" | "EXPN":
                if not argument:
                    raise CommandError(syntax_error(f"{verb} needs an argument"))
                return self._reply_to(Vrfy(argument=argument) if verb == "VRFY" else Expn(argument=argument))
            case "STARTTLS":
                return self._starttls(argument)
            case "AUTH":
                return self._auth(argument)
            case _:
                return self._error(UNKNOWN_COMMAND)

    def _mail(self, argument: str) -> Event:
        if self.state is State.GREETED:
            return self._error(_sequence("send EHLO or HELO first"))  # RFC 5321 §4.1.4
        if self.state is State.MAIL:
            return self._error(_sequence("nested MAIL command"))  # RFC 5321 §4.1.1.2
        return self._reply_to(parse_mail(argument, offer=self._offer()))

    def _rcpt(self, argument: str) -> Event:
        if self.state is not State.MAIL or self.mail is None:
            return self._error(_sequence("need MAIL before RCPT"))  # RFC 5321 §4.1.4
        if self._is_bdat_used:
            return self._error(_sequence("RCPT after BDAT"))
        event = parse_rcpt(argument, offer=self._offer(), hostname=self.hostname, is_smtputf8=self.mail.is_smtputf8)
        if self.recipient_count >= self.limits.max_recipients:
            return self._reply_to(InvalidCommand(reply=TOO_MANY_RECIPIENTS))  # RFC 5321 §4.5.3.1.10
        return self._reply_to(event)

    def _data_command(self, argument: str) -> Event:
        _no_argument("DATA", argument)  # RFC 5321 §4.1.1.4
        if self.state is not State.MAIL or self.mail is None:
            return self._error(_sequence("need MAIL and RCPT before DATA"))
        if self._is_bdat_used:
            return self._error(_sequence("DATA after BDAT"))  # RFC 3030 §2: not in one transaction
        if self.mail.body is Body.BINARY_MIME:
            return self._error(_sequence("BODY=BINARYMIME needs BDAT"))  # RFC 3030 §3
        if self.recipient_count == 0:
            return self._error(NO_VALID_RECIPIENTS)  # RFC 5321 §3.3
        return self._reply_to(Data())

    def _bdat(self, argument: str) -> Event | None:
        size, is_last = parse_bdat(argument)
        self._chunk = ChunkReader(size)
        self._chunk_is_last = is_last
        self._state_after_chunk = self.state
        self.state = State.BDAT
        # RFC 3030 §2: the chunk follows the command unasked, so even a refused BDAT is read to its end.
        if not self.extensions.chunking or self.ehlo is None or not self.ehlo.is_extended:
            self._chunk_error = NOT_IMPLEMENTED
        elif self.mail is None:
            self._chunk_error = _sequence("need MAIL and RCPT before BDAT")
        elif self.recipient_count == 0:
            self._chunk_error = NO_VALID_RECIPIENTS
        else:
            self._chunk_error = None
            self._is_bdat_used = True
            return Bdat(size=size, is_last=is_last)
        return None

    def _starttls(self, argument: str) -> Event:
        _no_argument("STARTTLS", argument)  # RFC 3207 §4
        if not self.extensions.starttls or self.ehlo is None or not self.ehlo.is_extended:
            return self._error(NOT_IMPLEMENTED if self.ehlo else _sequence("send EHLO first"))
        if self.is_tls:
            return self._error(_sequence("TLS already active"))
        if self.state is State.MAIL:
            return self._error(_sequence("mail transaction in progress"))
        return self._reply_to(StartTls())

    def _auth(self, argument: str) -> Event:
        if self.ehlo is None or not self.ehlo.is_extended:
            return self._error(_sequence("send EHLO first"))
        if self.is_authenticated:
            return self._error(_sequence("already authenticated"))  # RFC 4954 §4
        if self.state is State.MAIL:
            return self._error(_sequence("AUTH not allowed in a mail transaction"))  # RFC 4954 §4
        if not self.extensions.auth_mechanisms:
            return self._error(NOT_IMPLEMENTED)
        if not self.is_auth_offered:
            return self._error(STARTTLS_FIRST)
        event = parse_auth(argument)
        if event.mechanism not in self.extensions.auth_mechanisms:
            return self._error(AUTH_MECHANISM_UNKNOWN)  # RFC 4954 §4
        return self._reply_to(event)

    def _auth_response(self, text: str) -> Event:
        if text == "*":
            return self._reply_to(AuthCancelled())  # RFC 4954 §4
        try:
            return self._reply_to(AuthResponse(data=decode_base64(text)))
        except CommandError as exc:
            self.state = State.READY  # RFC 4954 §4: the exchange fails with 501
            return self._error(exc.reply)

    # ---- message content ------------------------------------------------------------------------

    def _next_data_event(self) -> Event | None:
        reader = self._data
        assert reader is not None
        data = self._within_size(reader.read(self._buffer), reader.size)
        if data:
            return DataChunk(data=data)
        if reader.is_done:
            self._data = None
            self.state = State.MAIL
            return self._reply_to(
                DataEnd(
                    size=reader.size,
                    has_bare_line_ending=reader.has_bare_line_ending,
                    is_too_large=reader.size > self.limits.max_message_size,
                    is_header_too_large=reader.header.size > self.limits.max_header_size,
                )
            )
        return self._need_data()

    def _next_chunk_event(self) -> Event | None:
        chunk = self._chunk
        assert chunk is not None
        data = chunk.read(self._buffer)
        if self._chunk_error is None and data:
            self._bdat_size += len(data)
            self._bdat_header.count(data)
            data = self._within_size(data, self._bdat_size)
            if data:
                return DataChunk(data=data)
        if not chunk.is_done:
            return self._need_data()
        self._chunk = None
        self.state = self._state_after_chunk
        if self._chunk_error is not None:
            return self._error(self._chunk_error)
        return self._reply_to(
            BdatEnd(
                size=chunk.size,
                total_size=self._bdat_size,
                is_last=self._chunk_is_last,
                is_too_large=self._bdat_size > self.limits.max_message_size,
                is_header_too_large=self._bdat_header.size > self.limits.max_header_size,
            )
        )

    def _within_size(self, data: bytes, total: int) -> bytes:
        """The part of ``data`` within the size limit: content past it is read but not handed on."""
        limit = self.limits.max_message_size
        if total <= limit:
            return data
        return data[: max(0, limit - (total - len(data)))]

    def _need_data(self) -> Event:
        if self._is_eof:
            self.state = State.CLOSED
            return ConnectionClosed()
        return NeedData()

    # ---- events that wait for a reply ---------------------------------------------------------

    def _reply_to(self, event: Event) -> Event:
        self._pending = event
        return event

    def _error(self, reply: Reply) -> Event:
        self.error_count += 1
        if self.error_count > self.limits.max_errors:
            reply = TOO_MANY_ERRORS
        return self._reply_to(InvalidCommand(reply=reply))


def _sequence(text: str) -> Reply:
    return Reply(code=503, status="5.5.1", text=text)  # RFC 5321 §4.2.4 bad sequence of commands


def _no_argument(verb: str, argument: str) -> None:
    if argument:
        raise CommandError(syntax_error(f"{verb} takes no argument"))
