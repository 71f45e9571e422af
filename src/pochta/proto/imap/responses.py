"""IMAP server responses as values, rendered to bytes (RFC 9051 §7 and the extensions).

``ServerConnection.send`` renders them; :func:`render` is here for tests and for building FETCH
values. Strings go through :mod:`pochta.mail.imapstring` (quoted when safe, else a literal).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pochta.mail.imapstring import NIL, render_nstring, render_string

from .commands import BinarySize, FetchAttribute, FetchItem
from .seqset import compress
from .utf7 import encode_mailbox


class Status(enum.Enum):
    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"  # greeting only (RFC 9051 §7.1.4)
    BYE = "BYE"  # untagged only (RFC 9051 §7.1.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """A response code ``[NAME value]`` (RFC 9051 §7.1); ``value`` is already in wire syntax."""

    name: str
    value: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged:
    tag: str
    status: Status  # OK, NO or BAD
    text: str
    code: Code | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """An untagged status response: ``* OK [UIDVALIDITY 3857529045] UIDs valid``, ``* BYE``."""

    status: Status
    text: str
    code: Code | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Continuation:
    """``+ text``: go on with a literal, IDLE, or a SASL challenge (base64 text) (RFC 9051 §7.5)."""

    text: str = "Ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class CapabilityData:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EnabledData:
    """``* ENABLED ...`` (RFC 5161 §3.2); sending it tells the core what is now enabled."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagsData:
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExistsData:
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentData:
    """IMAP4rev1 only (RFC 3501 §7.3.2); never send it once IMAP4rev2 is enabled."""

    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpungeData:
    sequence_number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VanishedData:
    """``* VANISHED [(EARLIER)] uids`` (RFC 7162 §3.2.10)."""

    uids: Sequence[int]
    is_earlier: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchData:
    """``* n FETCH (name value ...)``: the application renders names and values (see :func:`fetch_item_name`)."""

    sequence_number: int
    items: Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListData:
    """``* LIST`` (or ``* LSUB``) with LIST-EXTENDED items CHILDINFO and OLDNAME (RFC 5258 §4, RFC 9051 §7.3.1)."""

    attributes: tuple[str, ...]
    delimiter: str | None
    mailbox: str
    child_info: tuple[str, ...] = ()
    old_name: str | None = None
    is_lsub: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusData:
    mailbox: str
    items: Sequence[tuple[str, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchData:
    """``* SEARCH 2 3 6 (MODSEQ 917162500)`` (RFC 3501 §7.2.5, RFC 7162 §3.1.5)."""

    numbers: Sequence[int]
    modseq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ESearchData:
    """``* ESEARCH (TAG "a") UID MIN 2 COUNT 3`` (RFC 4731 §3.1, RFC 9051 §7.3.4); None items are left out."""

    tag: str | None
    is_uid: bool
    min: int | None = None
    max: int | None = None
    all: Sequence[int] | None = None  # rendered sorted and compressed; left out when empty
    count: int | None = None
    modseq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IdData:
    params: Sequence[tuple[str, str | None]] | None  # RFC 2971 §3.2; None is NIL


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceData:
    """RFC 2342 / RFC 9051 §7.3.2: each a list of (prefix, delimiter); empty renders NIL."""

    personal: Sequence[tuple[str, str | None]]
    other: Sequence[tuple[str, str | None]] = ()
    shared: Sequence[tuple[str, str | None]] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RawData:
    """Any other untagged data, already in wire syntax (without ``* `` and CRLF)."""

    data: bytes


Response = (
    Tagged | Condition | Continuation | CapabilityData | EnabledData | FlagsData | ExistsData | RecentData
    | ExpungeData | VanishedData | FetchData | ListData | StatusData | SearchData | ESearchData | IdData
    | NamespaceData | RawData
)  # fmt: skip


def render(response: Response, *, is_utf8: bool = False) -> bytes:
    """The wire form of ``response`` with CRLF; ``is_utf8``: mailbox names in UTF-8 (RFC 6855 §3)."""
    if isinstance(response, Tagged):
        return b"%b %b\r\n" % (response.tag.encode("ascii"), _condition(response.status, response.code, response.text))
    if isinstance(response, Condition):
        return b"* %b\r\n" % _condition(response.status, response.code, response.text)
    if isinstance(response, Continuation):
        return b"+ %b\r\n" % _text(response.text)
    return b"* %b\r\n" % _data(response, is_utf8=is_utf8)


def _data(response: Response, *, is_utf8: bool) -> bytes:
    match response:
        case CapabilityData(capabilities=capabilities):
            return b" ".join((b"CAPABILITY", *(_atom(cap) for cap in capabilities)))
        case EnabledData(capabilities=capabilities):
            return b" ".join((b"ENABLED", *(_atom(cap) for cap in capabilities)))
        case FlagsData(flags=flags):
            return b"FLAGS " + render_flags(flags)
        case ExistsData(count=count):
            return b"%d EXISTS" % count
        case RecentData(count=count):
            return b"%d RECENT" % count
        case ExpungeData(sequence_number=number):
            return b"%d EXPUNGE" % number
        case VanishedData(uids=uids, is_earlier=is_earlier):
            return b"VANISHED %b%b" % (b"(EARLIER) " if is_earlier else b"", compress(sorted(uids)).encode())
        case FetchData(sequence_number=number, items=items):
            return b"%d FETCH (%b)" % (number, b" ".join(name + b" " + value for name, value in items))
        case ListData():
            return _list(response, is_utf8=is_utf8)
        case StatusData(mailbox=mailbox, items=items):
            values = b" ".join(b"%b %d" % (_atom(name), value) for name, value in items)
            return b"STATUS %b (%b)" % (render_mailbox(mailbox, is_utf8=is_utf8), values)
        case SearchData(numbers=numbers, modseq=modseq):
            words = [b"SEARCH", *(b"%d" % number for number in numbers)]
            if modseq is not None:
                words.append(b"(MODSEQ %d)" % modseq)
            return b" ".join(words)
        case ESearchData():
            return _esearch(response)
        case IdData(params=params):
            return b"ID " + _pairs(params)
        case NamespaceData(personal=personal, other=other, shared=shared):
            return b"NAMESPACE " + b" ".join(
                _namespace(spaces, is_utf8=is_utf8) for spaces in (personal, other, shared)
            )
        case RawData(data=data):
            return data
    raise TypeError(f"not a response: {response!r}")


def _condition(status: Status, code: Code | None, text: str) -> bytes:
    parts = [status.value.encode()]
    if code is not None:
        parts.append(b"[%b]" % (_atom(code.name) + (b" " + code.value if code.value else b"")))
    parts.append(_text(text or status.value))  # RFC 9051 §9: resp-text needs text after the code
    return b" ".join(parts)


def _text(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8")


def _atom(name: str) -> bytes:
    return name.encode("ascii")


def _list(response: ListData, *, is_utf8: bool) -> bytes:
    delimiter = NIL if response.delimiter is None else render_string(response.delimiter.encode())
    words = [
        b"LSUB" if response.is_lsub else b"LIST",
        b"(%b)" % b" ".join(_atom(attribute) for attribute in response.attributes),
        delimiter,
        render_mailbox(response.mailbox, is_utf8=is_utf8),
    ]
    extended: list[bytes] = []
    if response.child_info:  # RFC 5258 §4: ("CHILDINFO" ("SUBSCRIBED"))
        info = b" ".join(render_string(item.encode()) for item in response.child_info)
        extended.append(b'"CHILDINFO" (%b)' % info)
    if response.old_name is not None:  # RFC 9051 §6.3.9.7 OLDNAME
        extended.append(b'"OLDNAME" (%b)' % render_mailbox(response.old_name, is_utf8=is_utf8))
    if extended:
        words.append(b"(%b)" % b" ".join(extended))
    return b" ".join(words)


def _esearch(response: ESearchData) -> bytes:
    words = [b"ESEARCH"]
    if response.tag is not None:
        words.append(b"(TAG %b)" % render_string(response.tag.encode()))
    if response.is_uid:
        words.append(b"UID")
    if response.min is not None:
        words.append(b"MIN %d" % response.min)
    if response.max is not None:
        words.append(b"MAX %d" % response.max)
    if response.all:
        words.append(b"ALL " + compress(sorted(set(response.all))).encode())
    if response.count is not None:
        words.append(b"COUNT %d" % response.count)
    if response.modseq is not None:
        words.append(b"MODSEQ %d" % response.modseq)
    return b" ".join(words)


def _pairs(params: Sequence[tuple[str, str | None]] | None) -> bytes:
    if params is None:
        return NIL
    rendered = (
        render_string(key.encode()) + b" " + render_nstring(None if value is None else value.encode())
        for key, value in params
    )
    return b"(%b)" % b" ".join(rendered)


def _namespace(spaces: Sequence[tuple[str, str | None]], *, is_utf8: bool) -> bytes:
    if not spaces:
        return NIL
    rendered = (
        b"(%b %b)"
        % (render_mailbox(prefix, is_utf8=is_utf8), NIL if delimiter is None else render_string(delimiter.encode()))
        for prefix, delimiter in spaces
    )
    return b"(%b)" % b"".join(rendered)


# ---- pieces for the application ------------------------------------------------------------------


def render_mailbox(name: str, *, is_utf8: bool) -> bytes:
    """A mailbox name as a string: UTF-8 (RFC 6855 §3) or modified UTF-7 (RFC 3501 §5.1.3)."""
    return render_string(name.encode("utf-8") if is_utf8 else encode_mailbox(name).encode("ascii"))


def render_flags(flags: Iterable[str]) -> bytes:
    return b"(%b)" % " ".join(flags).encode("utf-8")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render_date_time(moment: datetime.datetime) -> bytes:
    """RFC 9051 §9 date-time: ``"17-Jul-1996 02:44:25 -0700"`` in the moment's own offset (UTC if naive)."""
    offset = moment.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    text = f'"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} {moment:%H:%M:%S} {zone}"'
    return text.encode("ascii")


def fetch_item_name(item: FetchItem) -> bytes:
    """The name of ``item`` in a FETCH response: ``BODY[1.HEADER.FIELDS (From)]<0>``, never ``.PEEK``
    and with only the origin of a partial (RFC 9051 §7.5.2)."""
    if isinstance(item, FetchAttribute):
        return item.value.encode()
    if isinstance(item, BinarySize):
        return b"BINARY.SIZE[%b]" % _part(item.part)
    spec = _part(item.part)
    if item.text is not None:
        spec += (b"." if spec else b"") + item.text.value.encode()
    if item.fields:
        spec += b" (%b)" % b" ".join(render_astring(name) for name in item.fields)
    name = b"BINARY[%b]" if item.is_binary else b"BODY[%b]"
    origin = b"" if item.partial is None else b"<%d>" % item.partial.origin
    return name % spec + origin


def render_astring(value: str) -> bytes:
    raw = value.encode("utf-8")
    if raw and all(0x21 <= octet < 0x7F and octet not in b'(){%*"\\' for octet in raw):
        return raw
    return render_string(raw)


def _part(part: tuple[int, ...]) -> bytes:
    return ".".join(str(number) for number in part).encode()


def appenduid(uidvalidity: int, uids: Sequence[int]) -> Code:
    """``[APPENDUID 38505 3955]`` (RFC 4315 §3; several UIDs after MULTIAPPEND)."""
    return Code(name="APPENDUID", value=b"%d %b" % (uidvalidity, compress(uids).encode()))


def copyuid(uidvalidity: int, source: Sequence[int], destination: Sequence[int]) -> Code:
    """``[COPYUID 38505 304,319:320 3956:3958]`` (RFC 4315 §3): UIDs paired by position."""
    return Code(
        name="COPYUID", value=b"%d %b %b" % (uidvalidity, compress(source).encode(), compress(destination).encode())
    )


def flags_code(name: str, flags: Iterable[str]) -> Code:
    """``[PERMANENTFLAGS (\\Deleted \\Seen \\*)]``."""
    return Code(name=name, value=render_flags(flags))


def number_code(name: str, value: int) -> Code:
    """``[UIDVALIDITY 3857529045]``, ``[UIDNEXT 4392]``, ``[HIGHESTMODSEQ 715194045007]``."""
    return Code(name=name, value=b"%d" % value)
