"""What the SMTP peer did, as values: the server core turns bytes into these (h11's pull style).

Every command event except :class:`DataChunk` and :class:`Bdat` waits for exactly one reply from the
application (``ServerConnection.send``); until it comes, ``next_event`` returns :class:`Paused`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from pochta.mail.address import Address

from .replies import Reply


class Body(enum.Enum):
    """The MAIL BODY parameter: RFC 6152 (8BITMIME) and RFC 3030 §3 (BINARYMIME)."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


class Ret(enum.Enum):
    """What a DSN returns of the message (RFC 3461 §4.3)."""

    FULL = "FULL"
    HDRS = "HDRS"


class Notify(enum.Enum):
    """When the recipient's DSN is wanted (RFC 3461 §4.1); NEVER stands alone."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"
    NEVER = "NEVER"


@dataclass(frozen=True, slots=True, kw_only=True)
class Orcpt:
    """The original recipient of RFC 3461 §4.2: ``ORCPT=rfc822;user+2Bx@example``, xtext decoded."""

    addr_type: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ehlo:
    name: str  # the domain or address literal the client gave, as given
    is_extended: bool  # EHLO (True) or HELO (False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFrom:
    path: Address | None  # None for the null reverse-path <> (RFC 5321 §4.5.5)
    size: int | None = None  # RFC 1870 SIZE=
    body: Body | None = None
    is_smtputf8: bool = False  # RFC 6531 §3.4
    ret: Ret | None = None  # RFC 3461 §4.3
    envid: str | None = None  # RFC 3461 §4.4, xtext decoded
    auth: str | None = None  # RFC 4954 §5 AUTH=, xtext decoded; "<>" when the submitter is unknown
    params: Mapping[str, str | None] = field(default_factory=dict)  # every parameter, keyword upper-cased


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptTo:
    path: Address
    notify: frozenset[Notify] | None = None  # RFC 3461 §4.1
    orcpt: Orcpt | None = None  # RFC 3461 §4.2
    is_bare_postmaster: bool = False  # RCPT TO:<Postmaster> without a domain (RFC 5321 §4.1.1.3)
    params: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    """DATA in a transaction with accepted recipients; answer 354 to receive the content."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataChunk:
    """A piece of message content (dot-unstuffed after DATA, raw after BDAT). Needs no reply."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEnd:
    """The content of DATA ended at ``<CRLF>.<CRLF>``; answer with the transaction's final reply."""

    size: int  # octets of content, after dot-unstuffing
    has_bare_line_ending: bool  # a CR or LF not in CRLF: refuse with 550 5.6.2 (SMTP smuggling)
    is_too_large: bool  # over Limits.max_message_size: refuse with 552 5.3.4; chunks stopped there
    is_header_too_large: bool  # header block over Limits.max_header_size


@dataclass(frozen=True, slots=True, kw_only=True)
class Bdat:
    """``BDAT size [LAST]`` accepted: ``size`` octets follow as DataChunks, then BdatEnd. Needs no reply."""

    size: int
    is_last: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BdatEnd:
    """One BDAT chunk has been read (RFC 3030 §2); answer 250 (or 4xx/5xx, which ends the transaction)."""

    size: int  # octets of this chunk
    total_size: int  # octets of the message so far
    is_last: bool
    is_too_large: bool
    is_header_too_large: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls:
    """Answer 220 and start TLS, then call ``tls_established()``; or answer 454."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    mechanism: str  # upper-cased, one of the offered mechanisms
    initial_response: bytes | None  # base64 decoded; b"" for "=" (RFC 4954 §4)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    """A client line in an AUTH exchange, base64 decoded; the app sent 334 before it."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCancelled:
    """The client sent ``*`` (RFC 4954 §4); answer 501 (replies.AUTH_CANCELLED)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit:
    """Answer 221; the connection is then closed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Help:
    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Vrfy:
    argument: str  # answer replies.VRFY_CANNOT: we do not reveal users (RFC 5321 §3.5.3, §7.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expn:
    argument: str  # answer replies.EXPN_DISABLED (RFC 5321 §7.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidCommand:
    """The peer erred; send ``reply``. A 421 reply closes the connection."""

    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The peer closed (EOF), or the session ended with 221/421; close the socket."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedData:
    """Feed more bytes with ``receive_data``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """The core waits for the application: a reply to send, or ``tls_established()``."""


Event = (
    Ehlo
    | MailFrom
    | RcptTo
    | Data
    | DataChunk
    | DataEnd
    | Bdat
    | BdatEnd
    | StartTls
    | Auth
    | AuthResponse
    | AuthCancelled
    | Rset
    | Noop
    | Quit
    | Help
    | Vrfy
    | Expn
    | InvalidCommand
    | ConnectionClosed
    | NeedData
    | Paused
)
