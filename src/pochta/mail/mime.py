"""The offset-recording MIME parser: a message's part tree as byte ranges into the stored octets.

:func:`parse` reads a whole RFC 5322 message once and records, for every MIME part, where its header
block and its body lie in the buffer; nothing is decoded or copied beyond the header blocks. IMAP
section numbers (RFC 9051 §6.4.5) then resolve to exact ranges of the stored message, and
:func:`parse_message` also renders ENVELOPE, BODYSTRUCTURE and BODY once, for the store to keep.

The parser never raises on message content. Its rules for broken input:

* The header block runs to the first blank line. A line in it that is not a header field is kept
  when a header field follows it; else that line starts the body (no blank line before the body).
* A boundary delimiter is ``--boundary`` at the start of a line, then optionally ``--``, then only
  spaces or tabs to the end of the line (RFC 2046 §5.1.1). The line break before a delimiter belongs
  to it. A multipart without its close delimiter ends at the end of its parent's body; one whose
  boundary never occurs (or has no boundary parameter) has no children.
* ``message/rfc822`` and ``message/global`` parts hold an encapsulated message, unless they are
  base64 or quoted-printable encoded (RFC 2046 §5.2.1 forbids that; such a part is a leaf).
* Parts nested deeper than :data:`MAX_DEPTH` are leaves.
* A message has at most :data:`MAX_PARTS` parts: once that many are made, a multipart's remaining
  content (from its next part to its end) is one last leaf part, and a multipart met after that is a
  leaf.
"""

from __future__ import annotations

import json
import mmap
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pochta.mail import bodystructure
from pochta.mail.headers import FIELD, parse_content_type, split_value, unfold

Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap

MAX_DEPTH = 100  # deeper parts are leaves: bounds recursion and the rescans of nested multiparts
# Parts in one message: each costs about 12 µs to parse, so a 3.5 MB message of 100,000 empty parts cost
# 1.2 s at every delivery, a cheap way to burn a core. Real mail has tens.
MAX_PARTS = 10_000

# A header block is a run of header fields, each with its continuation lines (RFC 5322 §2.2; see
# headers.FIELD). Other non-blank lines are kept in it when a field follows them (an mbox "From "
# line, a mangled field), as Dovecot does; otherwise the first of them starts the body.
_FIELD_LINES = rb"[^\x00-\x20\x7f:]+[ \t]*:[^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*"
_OTHER_LINE = rb"(?![^\x00-\x20\x7f:]+[ \t]*:)(?!\r?\n)(?!\r?\Z)[^\n]*(?:\n|\Z)"
_HEADER_BLOCK = re.compile(rb"(?:(?:" + _OTHER_LINE + rb")*?" + _FIELD_LINES + rb")*")
_ENCAPSULATING = frozenset({"message/rfc822", "message/global"})

SectionText = Literal["", "HEADER", "TEXT", "MIME"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    """One MIME entity: octets ``[start, body_start)`` are its header block (with the blank line that
    ends it), ``[body_start, end)`` its body.

    ``content_type`` is the lowercase ``type/subtype`` with RFC 2045 defaults applied.
    A multipart has ``children``; a message/rfc822 part has its encapsulated ``message``, whose
    range equals this part's body.
    """

    start: int
    body_start: int
    end: int
    content_type: str = "text/plain"
    children: tuple[Part, ...] = ()
    message: Part | None = None

    @property
    def header(self) -> tuple[int, int]:
        return self.start, self.body_start

    @property
    def body(self) -> tuple[int, int]:
        return self.body_start, self.end

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    def walk(self) -> Iterator[Part]:
        """This part and every part inside it, depth first in section order."""
        yield self
        for child in self.children:
            yield from child.walk()
        if self.message is not None:
            yield from self.message.walk()


def parse(data: Buffer) -> Part:
    """The part tree of a whole message; ranges are offsets into ``data``. Never raises on content."""
    buf = _octets(data)
    return _parse_entity(buf, 0, len(buf), depth=0, default_type="text/plain", budget=[MAX_PARTS])


def _octets(data: Buffer) -> Buffer:
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
        return data.cast("B")
    return data


def _parse_entity(buf: Buffer, start: int, end: int, *, depth: int, default_type: str, budget: list[int]) -> Part:
    """`budget`: the parts still to be made in this message (one list, counted down by everyone)."""
    budget[0] -= 1
    block = _HEADER_BLOCK.match(buf, start, end)
    header_end = block.end() if block is not None else start
    if header_end < end and buf[header_end : header_end + 1] == b"\n":
        body_start = header_end + 1
    elif header_end + 2 <= end and buf[header_end : header_end + 2] == b"\r\n":
        body_start = header_end + 2
    else:  # no blank line: the body starts at the first line that is not a header field
        body_start = header_end
    content_type, boundary, encoding = _content_fields(bytes(buf[start:header_end]))
    content_type = content_type or default_type
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return Part(start=start, body_start=body_start, end=end, content_type=content_type)
    if content_type.startswith("multipart/"):
        child_type = "message/rfc822" if content_type == "multipart/digest" else "text/plain"  # RFC 2046 §5.1.5
        children = _parse_children(
            buf, body_start, end, boundary, depth=depth + 1, default_type=child_type, budget=budget
        )
        return Part(start=start, body_start=body_start, end=end, content_type=content_type, children=children)
    if content_type in _ENCAPSULATING and encoding not in (b"base64", b"quoted-printable"):
        message = _parse_entity(buf, body_start, end, depth=depth + 1, default_type="text/plain", budget=budget)
        return Part(start=start, body_start=body_start, end=end, content_type=content_type, message=message)
    return Part(start=start, body_start=body_start, end=end, content_type=content_type)


def _content_fields(header: bytes) -> tuple[str | None, bytes, bytes]:
    """Content-Type (lowercase type/subtype), its boundary, Content-Transfer-Encoding (lowercase)."""
    content_type: str | None = None
    boundary = b""
    encoding = b""
    has_type = has_encoding = False
    for match in FIELD.finditer(header):
        name = match.group(1).lower()
        if name == b"content-type" and not has_type:
            has_type = True
            parsed = parse_content_type(unfold(match.group(2)))
            if parsed is not None:
                content_type = parsed.mime_type
                boundary = next((value for key, value in parsed.params if key.lower() == b"boundary"), b"")
        elif name == b"content-transfer-encoding" and not has_encoding:
            has_encoding = True
            encoding = split_value(unfold(match.group(2)))[0].lower()
        if has_type and has_encoding:
            break
    return content_type, boundary, encoding


_DASHES_AFTER_BREAK = re.compile(rb"\n--")
_Delimiter: TypeAlias = tuple[int, int, bool]  # where it starts (its line break), where it ends, whether it closes


def _delimiter(buf: Buffer, boundary: bytes, pos: int, end: int, *, here: bool = False) -> _Delimiter | None:
    """The first delimiter line of `boundary` in ``buf[pos:end]`` after a line break, or (`here`) one at
    `pos` itself. Searched for rather than matched by a pattern per boundary: every message has its own
    boundary, and compiling two patterns for each cost as much as the rest of the parse."""
    size = len(boundary)
    while True:
        if here:
            start, name = pos, pos + 2
            if buf[pos:name] != b"--":
                return None
        else:
            found = _DASHES_AFTER_BREAK.search(buf, pos, end)
            if found is None:
                return None
            start, name = found.span()
        at = name + size
        if at <= end and buf[name:at] == boundary:
            closes = buf[at : at + 2] == b"--" and at + 2 <= end
            if closes:
                at += 2
            while at < end and buf[at : at + 1] in (b" ", b"\t"):
                at += 1
            if at == end:
                return start, at, closes
            if buf[at : at + 1] == b"\n":
                return start, at + 1, closes
            if buf[at : at + 2] == b"\r\n" and at + 2 <= end:
                return start, at + 2, closes
        if here:
            return None
        pos = start + 1


def _parse_children(
    buf: Buffer, start: int, end: int, boundary: bytes, *, depth: int, default_type: str, budget: list[int]
) -> tuple[Part, ...]:
    if not boundary:
        return ()
    delimiter = _delimiter(buf, boundary, start, end, here=True) or _delimiter(buf, boundary, start, end)
    children: list[Part] = []
    while delimiter is not None and not delimiter[2]:
        part_start = delimiter[1]
        if budget[0] <= 1:  # the message's last part: all that is left of this multipart
            children.append(_parse_entity(buf, part_start, end, depth=depth, default_type=default_type, budget=budget))
            break
        # The line break that ends one delimiter may be the one that starts the next (empty part).
        delimiter = _delimiter(buf, boundary, max(part_start - 1, start), end)
        if delimiter is None:  # no close delimiter: the last part runs to the end of the parent
            part_end = end
        else:
            part_end = delimiter[0]
            if part_end > part_start and buf[part_end - 1 : part_end] == b"\r":
                part_end -= 1
            part_end = max(part_end, part_start)
        children.append(_parse_entity(buf, part_start, part_end, depth=depth, default_type=default_type, budget=budget))
    return tuple(children)


# --- IMAP sections (RFC 9051 §6.4.5) -----------------------------------------------------------------


def find_part(root: Part, section: Sequence[int]) -> Part | None:
    """The part that IMAP section number ``section`` (e.g. ``(2, 1)`` for ``2.1``) names, or None.

    The empty section is the message itself. In a message that is not multipart, part 1 is the
    message's own body; a message/rfc822 part's children are numbered in its encapsulated message.
    """
    node = root
    is_message = True  # node is a message (the root or an encapsulated one), not a body part
    part = root
    for number in section:
        if node.is_multipart:
            if not 1 <= number <= len(node.children):
                return None
            part = node.children[number - 1]
        elif is_message and number == 1:
            part = node
        else:
            return None
        if part.message is not None:
            node, is_message = part.message, True
        else:
            node, is_message = part, False
    return part


def section_range(root: Part, section: Sequence[int], text: SectionText = "") -> tuple[int, int] | None:
    """The octets ``[start, end)`` of ``BODY[section.text]``, or None when there is no such section.

    ``text`` is ``"HEADER"``, ``"TEXT"``, ``"MIME"`` or ``""``. ``HEADER.FIELDS`` is ``"HEADER"``
    filtered with :func:`pochta.mail.headers.select_fields`.
    """
    if not section:
        if text == "":
            return root.start, root.end
        if text == "HEADER":
            return root.header
        if text == "TEXT":
            return root.body
        return None
    part = find_part(root, section)
    if part is None:
        return None
    if text == "":
        return part.body
    if text == "MIME":
        return part.header
    if part.message is None:  # HEADER and TEXT only exist for a message/rfc822 part
        return None
    return part.message.header if text == "HEADER" else part.message.body


# --- Parse once, store, load ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedMessage:
    """What the store keeps beside a blob: the part tree and the rendered FETCH items."""

    root: Part
    envelope: bytes  # FETCH ENVELOPE value, "(...)"
    bodystructure: bytes  # FETCH BODYSTRUCTURE value, with extension data
    body: bytes  # FETCH BODY value (non-extensible BODYSTRUCTURE)
    has_nul: bool = False  # NUL somewhere in the octets: no plain IMAP literal may carry them (see mail.binary)

    def dumps(self) -> bytes:
        value: dict[str, object] = {
            "v": 1,
            "root": _part_to_json(self.root),
            "envelope": self.envelope.decode("latin-1"),
            "bodystructure": self.bodystructure.decode("latin-1"),
            "body": self.body.decode("latin-1"),
        }
        if self.has_nul:
            value["nul"] = True
        return _dump_json(value)

    @classmethod
    def loads(cls, data: bytes) -> ParsedMessage:
        """Inverse of :meth:`dumps`; raises ValueError for anything else."""
        value = json.loads(data)
        if not isinstance(value, dict) or value.get("v") != 1:
            raise ValueError("not a stored parse (version 1)")
        try:
            return cls(
                root=_part_from_json(value["root"]),
                envelope=str(value["envelope"]).encode("latin-1"),
                bodystructure=str(value["bodystructure"]).encode("latin-1"),
                body=str(value["body"]).encode("latin-1"),
                has_nul=value.get("nul") is True,
            )
        except (KeyError, TypeError, UnicodeEncodeError) as exc:
            raise ValueError(f"malformed stored parse: {exc}") from exc


def parse_message(data: Buffer) -> ParsedMessage:
    """Parse ``data`` and render its ENVELOPE, BODYSTRUCTURE and BODY: everything the store keeps."""
    buf = _octets(data)
    root = parse(buf)
    structure, body = bodystructure.render_bodystructure(buf, root)
    return ParsedMessage(
        root=root,
        envelope=bodystructure.render_envelope(bytes(buf[root.start : root.body_start])),
        bodystructure=structure,
        body=body,
        has_nul=_has_nul(buf),
    )


def _has_nul(buf: Buffer) -> bool:
    find = getattr(buf, "find", None)  # bytes and mmap search in C; a memoryview is copied once
    return bool(find(b"\x00") >= 0) if find is not None else b"\x00" in bytes(buf)


def dumps(part: Part) -> bytes:
    """A part tree as compact JSON: ``[start, body_start, end, type, [children], message]``."""
    return _dump_json(_part_to_json(part))


def loads(data: bytes) -> Part:
    """Inverse of :func:`dumps`; raises ValueError for anything else."""
    return _part_from_json(json.loads(data))


def _dump_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_PartJson: TypeAlias = "list[int | str | list[_PartJson] | _PartJson | None]"


def _part_to_json(part: Part) -> _PartJson:
    out: _PartJson = [part.start, part.body_start, part.end, part.content_type]
    if part.children or part.message is not None:
        out.append([_part_to_json(child) for child in part.children])
    if part.message is not None:
        out.append(_part_to_json(part.message))
    return out


def _part_from_json(value: object) -> Part:
    if not isinstance(value, list) or not 4 <= len(value) <= 6:
        raise ValueError("malformed stored part")
    start, body_start, end, content_type = value[:4]
    if not (
        isinstance(start, int)
        and isinstance(body_start, int)
        and isinstance(end, int)
        and isinstance(content_type, str)
    ):
        raise ValueError("malformed stored part")
    children = value[4] if len(value) > 4 else []
    if not isinstance(children, list):
        raise ValueError("malformed stored part")
    message = _part_from_json(value[5]) if len(value) > 5 else None
    return Part(
        start=start,
        body_start=body_start,
        end=end,
        content_type=content_type,
        children=tuple(_part_from_json(child) for child in children),
        message=message,
    )
