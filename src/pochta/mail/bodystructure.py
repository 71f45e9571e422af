"""IMAP ENVELOPE, BODYSTRUCTURE and BODY (RFC 9051 §7.5.2), rendered from a parsed part tree.

Case convention (Dovecot's): types, subtypes, parameter values, encodings and dispositions are sent as
the message wrote them (``"text" "plain"`` or ``"TEXT" "PLAIN"``); parameter names are lowercased;
defaults are lowercase (``"text" "plain" ("charset" "us-ascii")``, ``"7bit"``); an encapsulated message
is always ``"message" "rfc822"`` (or ``"global"``). Header values go out raw, RFC 2047 words and all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pochta.mail.addresslist import EnvelopeAddress, parse_address_list
from pochta.mail.headers import FIELD, ContentType, parse_content_type, raw_params, split_value, unfold
from pochta.mail.imapstring import NIL, render_nstring, render_string

if TYPE_CHECKING:
    from pochta.mail.mime import Buffer, Part

_DEFAULT_CHARSET = b'"charset" "us-ascii"'
# RFC 9051 §7.5.2 requires at least one body part in a multipart; Dovecot writes this one.
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
_LANGUAGE_SEPARATOR = re.compile(rb"[\s,]+")
_COMMENT = re.compile(rb"\([^()]*\)")
_COUNT_CHUNK = 1 << 20
_TOKEN = re.compile(rb"[^\x00-\x20\x7f-\xff()<>@,;:\\\"/\[\]?=]+")

_ENVELOPE_FIELDS = frozenset(
    {b"date", b"subject", b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"in-reply-to", b"message-id"}
)
_ADDRESS_FIELDS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"})
_MIME_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-md5",
        b"content-disposition",
        b"content-language",
        b"content-location",
    }
)


def _first_fields(header: bytes, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The first occurrence of each wanted field, lowercase name to unfolded raw value."""
    found: dict[bytes, bytes] = {}
    for match in FIELD.finditer(header):
        name = match.group(1).lower()
        if name in names and name not in found:
            found[name] = unfold(match.group(2))
    return found


# --- ENVELOPE -----------------------------------------------------------------------------------------


def render_envelope(header: bytes) -> bytes:
    """The ENVELOPE of a message with this header block: ``(date subject from ... message-id)``.

    As Dovecot does, a repeated field counts once (its last occurrence) for the strings, and all
    occurrences of an address field are joined into one list.
    """
    values: dict[bytes, bytes] = {}
    for match in FIELD.finditer(header):
        name = match.group(1).lower()
        if name not in _ENVELOPE_FIELDS:
            continue
        value = unfold(match.group(2))
        if name in _ADDRESS_FIELDS and name in values:
            values[name] += b", " + value
        else:
            values[name] = value
    from_ = _address_list(values.get(b"from"))
    # RFC 9051 §7.5.2: absent or empty Sender and Reply-To take the value of From.
    sender = _address_list(values.get(b"sender")) or from_
    reply_to = _address_list(values.get(b"reply-to")) or from_
    items = [
        render_nstring(values.get(b"date")),
        render_nstring(values.get(b"subject")),
        from_,
        sender,
        reply_to,
        _address_list(values.get(b"to")),
        _address_list(values.get(b"cc")),
        _address_list(values.get(b"bcc")),
        render_nstring(values.get(b"in-reply-to")),
        render_nstring(values.get(b"message-id")),
    ]
    return b"(" + b" ".join(item or NIL for item in items) + b")"


def _address_list(value: bytes | None) -> bytes:
    """``((name adl mailbox host)...)``, or empty bytes when there is no address (the caller's NIL)."""
    if value is None:
        return b""
    addresses = parse_address_list(value)
    if not addresses:
        return b""
    return b"(" + b"".join(_address(address) for address in addresses) + b")"


def _address(address: EnvelopeAddress) -> bytes:
    fields = (address.name, address.adl, address.mailbox, address.host)
    return b"(" + b" ".join(render_nstring(value) for value in fields) + b")"


# --- BODYSTRUCTURE and BODY -----------------------------------------------------------------------------


def render_bodystructure(buf: Buffer, part: Part) -> tuple[bytes, bytes]:
    """BODYSTRUCTURE and BODY of ``part``, a message root or any part below it, in one walk (BODY is
    BODYSTRUCTURE without the extension data; one walk reads each part's fields once, 30 → 15 µs)."""
    out = _Out()
    _write_part(buf, part, out)
    return b"".join(out.full), b"".join(out.basic)


class _Out:
    """The two renderings side by side: ``full`` (BODYSTRUCTURE) and ``basic`` (BODY)."""

    __slots__ = ("basic", "full")

    def __init__(self) -> None:
        self.full: list[bytes] = []
        self.basic: list[bytes] = []

    def both(self, data: bytes) -> None:
        self.full.append(data)
        self.basic.append(data)

    def extension(self, data: bytes) -> None:
        self.full.append(data)


def _write_part(buf: Buffer, part: Part, out: _Out) -> None:
    values = _first_fields(bytes(buf[part.start : part.body_start]), _MIME_FIELDS)
    content_type = parse_content_type(values.get(b"content-type"))
    if content_type is not None and content_type.mime_type != part.content_type:
        content_type = None  # the parser fell back to a default type; so do we
    out.both(b"(")
    if part.is_multipart:
        _write_multipart(buf, part, content_type, values, out)
    else:
        _write_single(buf, part, content_type, values, out)
    out.both(b")")


def _write_multipart(
    buf: Buffer, part: Part, content_type: ContentType | None, values: dict[bytes, bytes], out: _Out
) -> None:
    if part.children:
        for child in part.children:
            _write_part(buf, child, out)
    else:
        out.full.append(_EMPTY_BODYSTRUCTURE)
        out.basic.append(_EMPTY_BODY)
    subtype = content_type.raw_subtype if content_type is not None else part.content_type.split("/")[1].encode()
    out.both(b" " + render_string(subtype))
    params = content_type.params if content_type is not None else ()
    out.extension(b" " + _params(params, is_text=False))
    out.extension(_common_extension(values))


def _write_single(
    buf: Buffer, part: Part, content_type: ContentType | None, values: dict[bytes, bytes], out: _Out
) -> None:
    maintype, _, subtype = part.content_type.partition("/")
    is_message = part.content_type in ("message/rfc822", "message/global")
    if is_message:
        out.both(b'"message" ' + render_string(subtype.encode("ascii")))
    elif content_type is not None:
        out.both(render_string(content_type.raw_type) + b" " + render_string(content_type.raw_subtype))
    else:
        out.both(render_string(maintype.encode("ascii")) + b" " + render_string(subtype.encode("ascii")))
    is_text = maintype == "text"
    params = content_type.params if content_type is not None else ()
    out.both(b" " + _params(params, is_text=is_text))
    out.both(b" " + render_nstring(values.get(b"content-id")))
    out.both(b" " + render_nstring(values.get(b"content-description")))
    # Like Dovecot: an encoding that is not one MIME token (RFC 2045 §6.1) is sent as the default.
    encoding = split_value(values.get(b"content-transfer-encoding", b""))[0]
    out.both(b" " + render_string(encoding if _TOKEN.fullmatch(encoding) else b"7bit"))
    out.both(b" %d" % (part.end - part.body_start))
    if is_message:
        if part.message is not None:
            header = bytes(buf[part.message.start : part.message.body_start])
            out.both(b" " + render_envelope(header) + b" ")
            _write_part(buf, part.message, out)
        else:  # an encoded message/rfc822 (a leaf): keep the grammar with an empty structure
            out.both(b" " + _EMPTY_ENVELOPE + b" ")
            out.full.append(_EMPTY_BODYSTRUCTURE)
            out.basic.append(_EMPTY_BODY)
        out.both(b" %d" % _count_lines(buf, part.body_start, part.end))
    elif is_text:
        out.both(b" %d" % _count_lines(buf, part.body_start, part.end))
    out.extension(b" " + render_nstring(values.get(b"content-md5")))
    out.extension(_common_extension(values))


def _params(params: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]], *, is_text: bool) -> bytes:
    items = [render_string(name) + b" " + render_string(value) for name, value in params]
    if is_text and not any(name.lower() == b"charset" for name, _ in params):
        items.append(_DEFAULT_CHARSET)  # RFC 2045 §5.2
    if not items:
        return NIL
    return b"(" + b" ".join(items) + b")"


def _common_extension(values: dict[bytes, bytes]) -> bytes:
    """`` disposition language location``, shared by single and multipart extension data."""
    out: list[bytes] = [b" "]
    disposition = values.get(b"content-disposition")
    head, rest = split_value(disposition) if disposition is not None else (b"", b"")
    if head:
        out.append(b"(" + render_string(head) + b" " + _params(raw_params(rest), is_text=False) + b")")
    else:
        out.append(NIL)
    languages = _LANGUAGE_SEPARATOR.split(_COMMENT.sub(b"", values.get(b"content-language", b"")))
    languages = [language for language in languages if language]
    out.append(b" ")
    if languages:
        out.append(b"(" + b" ".join(render_string(language) for language in languages) + b")")
    else:
        out.append(NIL)
    out.append(b" " + render_nstring(values.get(b"content-location")))
    return b"".join(out)


def _count_lines(buf: Buffer, start: int, end: int) -> int:
    """Line count of a body as IMAP reports it: its LF octets."""
    if isinstance(buf, bytes | bytearray):
        return buf.count(b"\n", start, end)
    return sum(bytes(buf[pos : min(end, pos + _COUNT_CHUNK)]).count(b"\n") for pos in range(start, end, _COUNT_CHUNK))
