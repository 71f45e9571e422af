"""SEARCH criteria as a typed tree (RFC 9051 §6.4.4 and the extensions), and their parser.

A command's keys form an :class:`And`; ``OR a b``, ``NOT a`` and ``( ... )`` nest. Keys of the same
kind share a class: ``FROM x`` is ``Header(name="FROM", value="x")``, ``SEEN``/``UNSEEN`` are
``Flag("\\\\Seen", is_set=True/False)``, ``NEW`` is ``And((Recent(is_set=True), Flag("\\\\Seen", is_set=False)))``.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from .seqset import SequenceSet
from .tokens import MAX_NUMBER64, ParseError, Reader


class DateField(enum.Enum):
    INTERNAL = "INTERNAL"  # BEFORE / ON / SINCE: the internal date
    SENT = "SENT"  # SENTBEFORE / SENTON / SENTSINCE: the Date: header
    SAVED = "SAVED"  # SAVEDBEFORE / SAVEDON / SAVEDSINCE (RFC 8514 §4.3)


class DateRelation(enum.Enum):
    BEFORE = "BEFORE"
    ON = "ON"
    SINCE = "SINCE"


@dataclass(frozen=True, slots=True, kw_only=True)
class All:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    flag: str  # "\\Seen" etc, or a keyword as given
    is_set: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Recent:
    """IMAP4rev1 RECENT / UNRECENT (RFC 3501 §6.4.4); IMAP4rev2 has no \\Recent."""

    is_set: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    name: str  # upper-cased for FROM/TO/CC/BCC/SUBJECT, as given for HEADER
    value: str  # "" matches every message with the field (RFC 9051 §6.4.4 HEADER)


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Date:
    field: DateField
    relation: DateRelation
    date: datetime.date


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    is_larger: bool  # LARGER n, else SMALLER n
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Within:
    """RFC 5032: YOUNGER n (internal date within n seconds) / OLDER n."""

    is_younger: bool
    seconds: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence:
    sequence_set: SequenceSet
    is_uid: bool  # UID set, else message sequence numbers


@dataclass(frozen=True, slots=True, kw_only=True)
class Modseq:
    """RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer."""

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None  # "priv", "shared" or "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveDateSupported:
    """RFC 8514 §4.3."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectId:
    """EMAILID / THREADID (RFC 8474 §6)."""

    is_thread: bool
    object_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    key: Criteria


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    left: Criteria
    right: Criteria


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    keys: tuple[Criteria, ...]


Criteria = (
    All | Flag | Recent | Header | Body | Text | Date | Size | Within | Sequence | Modseq | SaveDateSupported | ObjectId
    | Not | Or | And
)  # fmt: skip

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = frozenset({"BCC", "CC", "FROM", "SUBJECT", "TO"})
_DATE_KEYS = {
    f"{prefix}{relation.value}": (field, relation)
    for prefix, field in (("", DateField.INTERNAL), ("SENT", DateField.SENT), ("SAVED", DateField.SAVED))
    for relation in DateRelation
}
_ENTRY_TYPES = frozenset({"PRIV", "SHARED", "ALL"})
MAX_DEPTH = 50  # nesting of NOT / OR / parentheses, so a hostile command cannot exhaust the stack


def parse_criteria(reader: Reader) -> And:
    """``search-key *(SP search-key)`` up to the end of the command."""
    keys = [_key(reader, 0)]
    while not reader.is_at_end():
        reader.space()
        keys.append(_key(reader, 0))
    return And(keys=tuple(keys))


def _key(reader: Reader, depth: int) -> Criteria:
    if depth > MAX_DEPTH:
        raise ParseError("search keys nested too deeply")
    if reader.accept(b"("):  # RFC 9051 §9: "(" search-key *(SP search-key) ")"
        keys = [_key(reader, depth + 1)]
        while not reader.accept(b")"):
            reader.space()
            keys.append(_key(reader, depth + 1))
        return keys[0] if len(keys) == 1 else And(keys=tuple(keys))
    if reader.peek() in (b"$", b"*") or reader.peek().isdigit():
        return Sequence(sequence_set=reader.sequence_set(), is_uid=False)
    name = reader.atom("a search key").upper()
    if name in _FLAG_KEYS:
        flag, is_set = _FLAG_KEYS[name]
        return Flag(flag=flag, is_set=is_set)
    if name in _HEADER_KEYS:
        reader.space()
        return Header(name=name, value=_text(reader))
    if name in _DATE_KEYS:
        field, relation = _DATE_KEYS[name]
        reader.space()
        return Date(field=field, relation=relation, date=reader.date())
    match name:
        case "ALL":
            return All()
        case "NOT":
            reader.space()
            return Not(key=_key(reader, depth + 1))
        case "OR":
            reader.space()
            left = _key(reader, depth + 1)
            reader.space()
            return Or(left=left, right=_key(reader, depth + 1))
        case "KEYWORD" | "UNKEYWORD":
            reader.space()
            return Flag(flag=reader.atom("a keyword"), is_set=name == "KEYWORD")
        case "HEADER":
            reader.space()
            field_name = reader.astring("a header field name").decode("ascii", "replace")
            reader.space()
            return Header(name=field_name, value=_text(reader))
        case "BODY" | "TEXT":
            reader.space()
            text = _text(reader)
            return Body(text=text) if name == "BODY" else Text(text=text)
        case "LARGER" | "SMALLER":
            reader.space()
            return Size(is_larger=name == "LARGER", size=reader.number(limit=MAX_NUMBER64))
        case "YOUNGER" | "OLDER":  # RFC 5032 §3
            reader.space()
            return Within(is_younger=name == "YOUNGER", seconds=reader.nz_number())
        case "UID":
            reader.space()
            return Sequence(sequence_set=reader.sequence_set(), is_uid=True)
        case "RECENT" | "UNRECENT" | "OLD":  # RFC 3501 §6.4.4, not in IMAP4rev2
            return Recent(is_set=name == "RECENT")
        case "NEW":
            return And(keys=(Recent(is_set=True), Flag(flag="\\Seen", is_set=False)))
        case "MODSEQ":
            return _modseq(reader)
        case "SAVEDATESUPPORTED":
            return SaveDateSupported()
        case "EMAILID" | "THREADID":  # RFC 8474 §6
            reader.space()
            return ObjectId(is_thread=name == "THREADID", object_id=reader.atom("an object id"))
    raise ParseError(f"unknown search key {name[:30]}")


def _modseq(reader: Reader) -> Modseq:
    reader.space()  # RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
    if reader.peek().isdigit():
        return Modseq(modseq=reader.number(limit=MAX_NUMBER64))
    entry_name = reader.string().decode("utf-8", "replace")
    reader.space()
    entry_type = reader.atom("an entry type").upper()
    if entry_type not in _ENTRY_TYPES:
        raise ParseError("entry type must be priv, shared or all")
    reader.space()
    return Modseq(modseq=reader.number(limit=MAX_NUMBER64), entry_name=entry_name, entry_type=entry_type.lower())


def _text(reader: Reader) -> str:
    try:
        return reader.astring().decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("search string is not UTF-8") from None
