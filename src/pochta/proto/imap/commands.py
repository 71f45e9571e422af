"""IMAP commands as values (RFC 9051 §6 and the extensions Pochta offers).

The server core parses a command into one of these and hands it to the application inside a
:class:`~pochta.proto.imap.events.Command` event with its tag. Mailbox names are decoded ``str``
(modified UTF-7 or UTF-8), ``INBOX`` in any case is ``"INBOX"``. APPEND is not here: its messages
arrive as streamed events (``AppendStart``, ``LiteralChunk``, ``LiteralEnd``, ``AppendEnd``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .search import And
from .seqset import SequenceSet

# ---- any state (RFC 9051 §6.1) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Id:
    """RFC 2971: the client's identification; None for ``ID NIL``."""

    params: tuple[tuple[str, str | None], ...] | None


# ---- not authenticated (RFC 9051 §6.2) ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    mechanism: str  # upper-cased
    initial_response: bytes | None = None  # SASL-IR (RFC 4959), base64-decoded; ``=`` gives b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    user: str
    password: str


# ---- authenticated (RFC 9051 §6.3) --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable:
    capabilities: tuple[str, ...]  # upper-cased, as asked for (RFC 5161)


@dataclass(frozen=True, slots=True, kw_only=True)
class QresyncParams:
    """``SELECT mailbox (QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]]))`` (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    known_sequence_numbers: SequenceSet | None = None  # seq-match-data: these sequence numbers ...
    known_sequence_uids: SequenceSet | None = None  # ... have these UIDs


@dataclass(frozen=True, slots=True, kw_only=True)
class Select:
    mailbox: str
    is_read_only: bool = False  # EXAMINE
    is_condstore: bool = False  # RFC 7162 §3.1.8 (CONDSTORE) parameter
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3: CREATE name (USE (\Sent))


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename:
    mailbox: str
    new_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    mailbox: str


class ListSelection(enum.Enum):
    """LIST selection options (RFC 5258 §3.1, RFC 6154 §4)."""

    SUBSCRIBED = "SUBSCRIBED"
    REMOTE = "REMOTE"
    RECURSIVEMATCH = "RECURSIVEMATCH"
    SPECIAL_USE = "SPECIAL-USE"


class ListReturn(enum.Enum):
    """LIST return options (RFC 5258 §3.2, RFC 5819, RFC 6154)."""

    SUBSCRIBED = "SUBSCRIBED"
    CHILDREN = "CHILDREN"
    SPECIAL_USE = "SPECIAL-USE"
    STATUS = "STATUS"


class StatusItem(enum.Enum):
    """RFC 9051 §6.3.11 status-att, RFC 3501 RECENT, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ, RFC 8474 MAILBOXID."""

    MESSAGES = "MESSAGES"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    DELETED = "DELETED"
    SIZE = "SIZE"
    DELETED_STORAGE = "DELETED-STORAGE"  # RFC 9208 §4.3: with QUOTA=RES-STORAGE
    RECENT = "RECENT"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    MAILBOXID = "MAILBOXID"
    APPENDLIMIT = "APPENDLIMIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class List:
    reference: str
    patterns: tuple[str, ...]  # with % and * wildcards, decoded like mailbox names
    selection: frozenset[ListSelection] = frozenset()
    returns: frozenset[ListReturn] = frozenset()
    status_items: tuple[StatusItem, ...] = ()  # RETURN (STATUS (...)), RFC 5819
    is_extended: bool = False  # any LIST-EXTENDED syntax used: reply with extended data items


@dataclass(frozen=True, slots=True, kw_only=True)
class Lsub:
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuota:
    """RFC 9208 §4.1.1."""

    root: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuotaRoot:
    """RFC 9208 §4.1.2."""

    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuota:
    """RFC 9208 §4.1.3: resource names (upper case) and limits."""

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle:
    """RFC 2177: answer ``+ idling``; then ``Done`` arrives and is answered with the tagged OK."""


# ---- selected (RFC 9051 §6.4) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Unselect:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge:
    uids: SequenceSet | None = None  # UID EXPUNGE (RFC 4315 §2.1)


class SearchReturn(enum.Enum):
    """ESEARCH return options (RFC 4731 §3.1, RFC 5182 SAVE)."""

    MIN = "MIN"
    MAX = "MAX"
    ALL = "ALL"
    COUNT = "COUNT"
    SAVE = "SAVE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Search:
    criteria: And  # the keys of the command, ANDed (RFC 9051 §6.4.4)
    charset: str | None = None  # upper-cased; only UTF-8 and US-ASCII get here
    returns: frozenset[SearchReturn] | None = None  # None: plain SEARCH; RETURN () means ALL (RFC 4731 §3.1)
    is_uid: bool = False


class FetchAttribute(enum.Enum):
    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_SIZE = "RFC822.SIZE"
    RFC822_TEXT = "RFC822.TEXT"
    UID = "UID"
    BODY = "BODY"  # the non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    MODSEQ = "MODSEQ"  # RFC 7162 §3.1.4.1
    EMAILID = "EMAILID"  # RFC 8474 §5.1
    THREADID = "THREADID"
    SAVEDATE = "SAVEDATE"  # RFC 8514 §4.3


class SectionText(enum.Enum):
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"  # only after a part number (RFC 9051 §6.4.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    """``<origin.count>`` (RFC 9051 §6.4.5); the response names only the origin."""

    origin: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BodySection:
    """``BODY[part.text]<partial>`` or ``BODY.PEEK[...]``; ``BINARY[part]`` when ``is_binary`` (RFC 3516)."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()  # HEADER.FIELDS (...) names, as given
    partial: Partial | None = None
    is_peek: bool = False
    is_binary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BinarySize:
    """``BINARY.SIZE[part]`` (RFC 3516 §4.2)."""

    part: tuple[int, ...] = ()


FetchItem = FetchAttribute | BodySection | BinarySize


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch:
    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]  # macros expanded; UID added for UID FETCH (RFC 9051 §6.4.9)
    changed_since: int | None = None  # RFC 7162 §3.1.4.1
    is_vanished: bool = False  # RFC 7162 §3.2.6, only with UID FETCH and CHANGEDSINCE
    is_uid: bool = False


class StoreMode(enum.Enum):
    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    is_silent: bool = False
    unchanged_since: int | None = None  # RFC 7162 §3.1.3
    is_uid: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    sequence_set: SequenceSet
    mailbox: str
    is_move: bool = False  # MOVE (RFC 6851)
    is_uid: bool = False


CommandType = (
    Capability | Noop | Logout | Id | StartTls | Authenticate | Login | Enable | Select | Create | Delete | Rename
    | Subscribe | Unsubscribe | List | Lsub | Namespace | Status | Idle | Check | Close | Unselect | Expunge | Search
    | Fetch | Store | Copy | GetQuota | GetQuotaRoot | SetQuota
)  # fmt: skip
