"""FETCH arguments (RFC 9051 §6.4.5 and §9 fetch-att, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED)."""

from __future__ import annotations

import re

from . import commands as c
from .tokens import MAX_NUMBER64, ParseError, Reader

_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SIMPLE = {attribute.value: attribute for attribute in c.FetchAttribute}
_FAST = (c.FetchAttribute.FLAGS, c.FetchAttribute.INTERNALDATE, c.FetchAttribute.RFC822_SIZE)
# RFC 9051 §6.4.5: the macros
_MACROS = {
    "FAST": _FAST,
    "ALL": (*_FAST, c.FetchAttribute.ENVELOPE),
    "FULL": (*_FAST, c.FetchAttribute.ENVELOPE, c.FetchAttribute.BODY),
}


def parse_fetch(reader: Reader, *, is_uid: bool, is_qresync: bool) -> c.Fetch:
    reader.space()
    sequence_set = reader.sequence_set()
    reader.space()
    items: list[c.FetchItem] = []
    if reader.accept(b"("):
        items.append(_item(reader))
        while not reader.accept(b")"):
            reader.space()
            items.append(_item(reader))
    else:
        name = _name(reader)
        macro = _MACROS.get(name)
        if macro:
            items.extend(macro)
        else:
            items.append(_item(reader, name))
    if is_uid and c.FetchAttribute.UID not in items:
        items.append(c.FetchAttribute.UID)  # RFC 9051 §6.4.9: UID FETCH always returns the UID
    changed_since: int | None = None
    is_vanished = False
    if reader.accept(b" ("):  # RFC 4466 §2.4 fetch-modifiers
        while True:
            modifier = reader.atom("a FETCH modifier").upper()
            if modifier == "CHANGEDSINCE":
                reader.space()
                changed_since = reader.nz_number(limit=MAX_NUMBER64)
            elif modifier == "VANISHED":
                is_vanished = True
            else:
                raise ParseError(f"unknown FETCH modifier {modifier[:30]}")
            if reader.accept(b")"):
                break
            reader.space()
        if is_vanished and not (is_uid and changed_since is not None and is_qresync):
            raise ParseError("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")  # RFC 7162 §3.2.6
    return c.Fetch(
        sequence_set=sequence_set,
        items=tuple(items),
        changed_since=changed_since,
        is_vanished=is_vanished,
        is_uid=is_uid,
    )


def _name(reader: Reader) -> str:
    match = _NAME.match(reader.data, reader.position)
    if match is None:
        raise ParseError("expected a FETCH item")
    reader.position = match.end()
    return match.group().decode("ascii").upper()


def _item(reader: Reader, name: str | None = None) -> c.FetchItem:
    name = name or _name(reader)
    if reader.peek() == b"[":
        match name:
            case "BODY" | "BODY.PEEK":
                return _body_section(reader, is_peek=name == "BODY.PEEK")
            case "BINARY" | "BINARY.PEEK":
                part = _binary_part(reader)
                return c.BodySection(part=part, partial=_partial(reader), is_peek=name == "BINARY.PEEK", is_binary=True)
            case "BINARY.SIZE":
                return c.BinarySize(part=_binary_part(reader))
        raise ParseError(f"{name[:30]} takes no section")
    attribute = _SIMPLE.get(name)
    if attribute is None:
        raise ParseError(f"unknown FETCH item {name[:30]}")
    return attribute


def _part(reader: Reader) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number), stopping before a following section-text."""
    numbers = [reader.nz_number()]
    while reader.peek() == b"." and reader.data[reader.position + 1 : reader.position + 2].isdigit():
        reader.position += 1
        numbers.append(reader.nz_number())
    return tuple(numbers)


def _binary_part(reader: Reader) -> tuple[int, ...]:
    reader.expect(b"[")  # RFC 3516 §6: section-binary = "[" [section-part] "]"
    part = () if reader.peek() == b"]" else _part(reader)
    reader.expect(b"]")
    return part


def _body_section(reader: Reader, *, is_peek: bool) -> c.BodySection:
    reader.expect(b"[")
    part: tuple[int, ...] = ()
    text: c.SectionText | None = None
    fields: tuple[str, ...] = ()
    if reader.peek().isdigit():
        part = _part(reader)
        if reader.accept(b"."):
            text = _section_text(reader, has_part=True)
    elif reader.peek() != b"]":
        text = _section_text(reader, has_part=False)
    if text in (c.SectionText.HEADER_FIELDS, c.SectionText.HEADER_FIELDS_NOT):
        reader.space()  # RFC 9051 §9: header-list = "(" header-fld-name *(SP header-fld-name) ")"
        names = reader.list_of("astring")
        if not names:
            raise ParseError("empty header field list")
        fields = tuple(name.decode("ascii", "replace") for name in names)
    reader.expect(b"]")
    return c.BodySection(part=part, text=text, fields=fields, partial=_partial(reader), is_peek=is_peek)


def _section_text(reader: Reader, *, has_part: bool) -> c.SectionText:
    name = _name(reader)
    if name == "MIME" and not has_part:
        raise ParseError("MIME needs a part number")  # RFC 9051 §9 section-text
    try:
        return c.SectionText(name)
    except ValueError:
        raise ParseError(f"unknown section {name[:30]}") from None


def _partial(reader: Reader) -> c.Partial | None:
    if not reader.accept(b"<"):
        return None
    origin = reader.number(limit=MAX_NUMBER64)  # RFC 9051 §9: partial = "<" number64 "." nz-number64 ">"
    reader.expect(b".")
    count = reader.nz_number(limit=MAX_NUMBER64)
    reader.expect(b">")
    return c.Partial(origin=origin, count=count)
