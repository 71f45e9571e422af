"""FETCH data items for one message (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY; RFC 7162 MODSEQ;
RFC 8474 EMAILID; RFC 8514 SAVEDATE).

Structure items (ENVELOPE, BODYSTRUCTURE, BODY) come pre-rendered from the stored parse; body sections
are the exact stored octets, read from the blob by byte range, never re-serialised.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from pochta.mail.binary import without_nul
from pochta.mail.headers import select_fields
from pochta.mail.mime import ParsedMessage, Part, SectionText, parse_message, section_range
from pochta.proto.imap.commands import BinarySize, BodySection, FetchAttribute, FetchItem
from pochta.proto.imap.commands import SectionText as Text
from pochta.proto.imap.responses import fetch_item_name, render_date_time, render_flags
from pochta.store.api import Blobs, Message

from .content import decode_body, transfer_encoding
from .refusal import Refusal

_STRUCTURE = frozenset(
    {FetchAttribute.ENVELOPE, FetchAttribute.BODY, FetchAttribute.BODYSTRUCTURE}
    | {FetchAttribute.RFC822, FetchAttribute.RFC822_HEADER, FetchAttribute.RFC822_TEXT}
)
_SETS_SEEN = frozenset({FetchAttribute.RFC822, FetchAttribute.RFC822_TEXT})  # RFC 9051 §6.4.5


def needs_structure(items: Sequence[FetchItem]) -> bool:
    for item in items:
        if isinstance(item, FetchAttribute):
            if item in _STRUCTURE:
                return True
        else:
            return True  # every body section: the stored parse knows whether NUL must be encoded away
    return False


def sets_seen(items: Sequence[FetchItem]) -> bool:
    """Does fetching ``items`` set \\Seen (a body section without .PEEK, RFC822, RFC822.TEXT)?"""
    return any(
        (isinstance(item, BodySection) and not item.is_peek)
        or (isinstance(item, FetchAttribute) and item in _SETS_SEEN)
        for item in items
    )


STREAM_OVER = 256 * 1024  # octets of a section above which it is streamed, not held in memory


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRange:
    """A literal whose octets the session copies from the blob piece by piece."""

    blob_id: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


Value = bytes | BlobRange


@functools.lru_cache(maxsize=1024)
def _loads(structure: bytes) -> ParsedMessage:
    """The stored parse, decoded once for the many FETCHes of the same messages (ParsedMessage is frozen)."""
    return ParsedMessage.loads(structure)


class _Source:
    """The octets of one message, read by range; the whole message once read is kept for the rest."""

    def __init__(self, blobs: Blobs, message: Message) -> None:
        self._blobs = blobs
        self._message = message
        self._whole: bytes | None = None
        self._parsed: ParsedMessage | None = None
        self._size = message.size
        self._nul_free: _Source | None = None

    @property
    def size(self) -> int:
        return self._size

    async def nul_free(self) -> _Source:
        """The message as BODY[] and RFC822 may send it. The stored octets stay as they arrived, but no
        plain literal may carry NUL (RFC 9051 §4.3): parts holding NUL go out base64-encoded, as Dovecot
        stores them, and BINARY[] still gives the original octets."""
        if not self.parsed.has_nul:
            return self
        if self._nul_free is None:
            data = await self.read()
            converted = without_nul(data)
            derived = _Source(self._blobs, self._message)
            derived._whole, derived._size = converted, len(converted)
            derived._parsed = parse_message(converted)
            self._nul_free = derived
        return self._nul_free

    @property
    def parsed(self) -> ParsedMessage:
        if self._parsed is None:
            if self._message.structure is None:
                raise AssertionError("message loaded without its structure")
            self._parsed = _loads(self._message.structure)
        return self._parsed

    async def read(self, start: int = 0, end: int | None = None) -> bytes:
        end = self._size if end is None else end  # a known size lets a small read skip the thread hop
        if self._whole is None and start == 0 and end == self._size:
            self._whole = await self._blobs.read(self._message.blob_id)
        if self._whole is not None:
            return self._whole[start:end]
        return await self._blobs.read(self._message.blob_id, start, end)

    async def literal(self, start: int, end: int) -> Value:
        """Octets ``[start, end)`` as a literal; a large range is streamed from the blob later."""
        if end - start > STREAM_OVER and self._whole is None:
            return BlobRange(blob_id=self._message.blob_id, start=start, end=end)
        return _literal(await self.read(start, end))


async def render_items(
    message: Message,
    items: Sequence[FetchItem],
    *,
    blobs: Blobs,
    flags: frozenset[str],
    modseq: int,
) -> list[tuple[bytes, Value]]:
    """``(name, value)`` pairs for a FetchData response, in the order asked."""
    source = _Source(blobs, message)
    out: list[tuple[bytes, Value]] = []
    for item in items:
        if isinstance(item, FetchAttribute):
            out.append((item.value.encode(), await _attribute(item, message, source, flags=flags, modseq=modseq)))
        elif isinstance(item, BinarySize):
            data = await _binary(source, item.part)
            out.append((fetch_item_name(item), b"%d" % len(data)))
        else:
            out.append((fetch_item_name(item), await _section(source, item)))
    return out


async def _attribute(
    item: FetchAttribute, message: Message, source: _Source, *, flags: frozenset[str], modseq: int
) -> Value:
    match item:
        case FetchAttribute.UID:
            return b"%d" % message.uid
        case FetchAttribute.FLAGS:
            return render_flags(sorted(flags))
        case FetchAttribute.INTERNALDATE:
            return render_date_time(message.internal_date)
        case FetchAttribute.RFC822_SIZE:
            return b"%d" % message.size
        case FetchAttribute.ENVELOPE:
            return source.parsed.envelope
        case FetchAttribute.BODYSTRUCTURE:
            return source.parsed.bodystructure
        case FetchAttribute.BODY:
            return source.parsed.body
        case FetchAttribute.RFC822:
            source = await source.nul_free()
            return await source.literal(0, source.size)
        case FetchAttribute.RFC822_HEADER:
            source = await source.nul_free()
            return await source.literal(*source.parsed.root.header)
        case FetchAttribute.RFC822_TEXT:
            source = await source.nul_free()
            return await source.literal(*source.parsed.root.body)
        case FetchAttribute.MODSEQ:
            return b"(%d)" % modseq  # RFC 7162 §3.1.4.1
        case FetchAttribute.EMAILID:
            return b"(%b)" % message.blob_id.encode()  # RFC 8474 §5.1: copies share it
        case FetchAttribute.THREADID:
            return b"NIL"  # RFC 8474 §5.2: no threads kept
        case FetchAttribute.SAVEDATE:
            return render_date_time(message.save_date)  # RFC 8514 §4.3
    raise AssertionError(f"unhandled FETCH attribute {item}")


async def _section(source: _Source, item: BodySection) -> Value:
    partial = item.partial
    if not item.is_binary:
        source = await source.nul_free()
    if item.is_binary or item.text in (Text.HEADER_FIELDS, Text.HEADER_FIELDS_NOT):
        data = await (_binary(source, item.part) if item.is_binary else _header_fields(source, item))
        if data is None:
            return b"NIL"
        if partial is not None:  # RFC 9051 §6.4.5: <origin.count>; past the end is the empty string
            data = data[partial.origin : partial.origin + partial.count]
        if item.is_binary and b"\x00" in data:
            return b"~{%d}\r\n%b" % (len(data), data)  # RFC 3516 §4.3: literal8
        return _literal(data)
    if not item.part and item.text is None:
        found: tuple[int, int] | None = (0, source.size)
    else:
        name: SectionText = "" if item.text is None else item.text.value
        found = section_range(source.parsed.root, item.part, name)
    if found is None:
        return b"NIL"
    start, end = found
    if partial is not None:
        start = min(end, start + partial.origin)
        end = min(end, start + partial.count)
    return await source.literal(start, end)


async def _header_fields(source: _Source, item: BodySection) -> bytes | None:
    found = section_range(source.parsed.root, item.part, "HEADER")
    if found is None:
        return None
    header = await source.read(*found)
    return select_fields(header, item.fields, exclude=item.text is Text.HEADER_FIELDS_NOT)


async def _binary(source: _Source, part: tuple[int, ...]) -> bytes:
    """BINARY[part]: the part's body with its Content-Transfer-Encoding undone (RFC 3516 §4.2)."""
    if not part:
        return await source.read()
    root: Part = source.parsed.root
    header_range = section_range(root, part, "MIME")
    body_range = section_range(root, part, "")
    if header_range is None or body_range is None:
        raise Refusal.no("no such body part", "NONEXISTENT")
    encoding = transfer_encoding(await source.read(*header_range))
    decoded = decode_body(await source.read(*body_range), encoding)
    if decoded is None:
        raise Refusal.no(f"unknown transfer encoding {encoding[:40]!r}", "UNKNOWN-CTE")  # RFC 3516 §4.4
    return decoded


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n%b" % (len(data), data)
