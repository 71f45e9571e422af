"""The message as Sieve tests see it: an editable list of header fields (RFC 5293), addresses in them
(RFC 5228 §2.7.4, RFC 5233 subaddress), and body text by MIME part (RFC 5173)."""

from __future__ import annotations

import binascii
import email.header
import re
from collections.abc import Callable, Iterator

from pochta.mail import mime
from pochta.mail.address import parse_address, quote_local
from pochta.mail.addresslist import MISSING_DOMAIN, MISSING_MAILBOX, parse_address_list
from pochta.mail.headers import (
    FIELD,
    decode_charset,
    decode_text,
    decode_words,
    header_value,
    parse_content_type,
    unfold,
)

SUBADDRESS_SEPARATOR = "+"  # RFC 5233 §2: the separator is the server's choice; ours is the common one
_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}
_ENTITY = re.compile("|".join(re.escape(e) for e in _ENTITIES))
_SPACES = re.compile(r"[ \t\r\n]+")
_LINE_BREAK = re.compile(r"\r?\n")
_Q_WORD = re.compile(rb"=\?[^?\s]+\?[qQ]\?[^?\s]*\?=")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
MAX_HEADER_LINE = 78  # RFC 5322 §2.1.1: fold added fields at this width


class Headers:
    """The header fields in order, each as written; editheader changes them, tests read them."""

    def __init__(self, block: bytes) -> None:
        self._fields: list[tuple[str, bytes]] = [
            (match.group(1).decode("latin-1"), match.group(0)) for match in FIELD.finditer(block)
        ]
        self.is_edited = False

    def names(self) -> Iterator[str]:
        return (name for name, _ in self._fields)

    def raw(self, name: str) -> list[bytes]:
        """The unfolded raw values of the fields called ``name``, top to bottom."""
        wanted = name.lower()
        return [_value(text) for field_name, text in self._fields if field_name.lower() == wanted]

    def values(self, name: str) -> list[str]:
        """The values as text, RFC 2047 words decoded (RFC 5228 §2.7.2)."""
        return [header_text(value) for value in self.raw(name)]

    def has(self, name: str) -> bool:
        wanted = name.lower()
        return any(field_name.lower() == wanted for field_name, _ in self._fields)

    def add(self, name: str, value: str, *, is_last: bool) -> None:
        """RFC 5293 §4: add at the top (default) or the bottom; non-ASCII text as RFC 2047 words."""
        text = " ".join(_LINE_BREAK.split(value))
        if not text.isascii():
            text = email.header.Header(text, "utf-8", header_name=name).encode()
        entry = (name, _fold(f"{name}: {text}").encode("utf-8"))
        if is_last:
            self._fields.append(entry)
        else:
            self._fields.insert(0, entry)
        self.is_edited = True

    def delete(self, name: str, *, index: int = 0, is_last: bool = False, keep: Callable[[str], bool]) -> None:
        """RFC 5293 §5: delete the fields called ``name`` (only the ``index``-th, counting from the end
        with ``is_last``) for which ``keep`` says False."""
        wanted = name.lower()
        positions = [i for i, (field_name, _) in enumerate(self._fields) if field_name.lower() == wanted]
        if index:
            if index > len(positions):
                return
            positions = [positions[-index] if is_last else positions[index - 1]]
        doomed = {i for i in positions if not keep(header_text(_value(self._fields[i][1])))}
        if doomed:
            self._fields = [entry for i, entry in enumerate(self._fields) if i not in doomed]
            self.is_edited = True

    def block(self) -> bytes:
        """The header block with its ending blank line, CRLF line ends."""
        lines = [re.sub(rb"\r?\n", b"\r\n", text.rstrip(b"\r\n")) + b"\r\n" for _, text in self._fields]
        return b"".join(lines) + b"\r\n"


def header_text(value: bytes) -> str:
    """A raw value as text with its encoded words decoded, also those with raw 8-bit octets inside
    a Q-encoded word (seen in the wild; Dovecot decodes them as well)."""
    if b"=?" in value and not value.isascii():
        value = _Q_WORD.sub(lambda word: _EIGHT_BIT.sub(lambda m: b"=%02X" % m.group(0)[0], word.group(0)), value)
    return decode_words(value)


def _value(field_text: bytes) -> bytes:
    return unfold(field_text.split(b":", 1)[1])


def _fold(line: str) -> str:
    if len(line) <= MAX_HEADER_LINE:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > MAX_HEADER_LINE:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n".join(out)


# --- addresses -------------------------------------------------------------------------------------


def addresses(value: bytes) -> list[tuple[str, str | None]]:
    """The (local part, domain) of each mailbox in an address header; groups flattened. A value that holds
    no address at all gives itself whole, with no domain, so :all can still match it."""
    out: list[tuple[str, str | None]] = []
    for address in parse_address_list(value):
        if address.mailbox is None or address.host is None:
            continue  # a group marker
        if address.mailbox == MISSING_MAILBOX or address.host == MISSING_DOMAIN:
            continue
        out.append((decode_text(address.mailbox), decode_text(address.host)))
    if not out and value.strip():
        text = decode_text(value).strip()
        if "@" in text and "<" not in text:
            local, _, domain = text.rpartition("@")
            return [(local, domain)]
        return [(text, None)]
    return out


_NAME_ADDR = re.compile(r"[^<]*<([^<>]*)>\s*")


def mailbox_address(text: str) -> str:
    """``local@domain``, ``<local@domain>`` or ``Name <local@domain>`` as a normalised address;
    AddressError when it is none of these (redirect, vacation :from)."""
    text = text.strip()
    name_addr = _NAME_ADDR.fullmatch(text)
    return str(parse_address(name_addr.group(1).strip() if name_addr else text))


def split_envelope(address: str) -> tuple[str, str | None]:
    if not address:
        return "", ""  # RFC 5228 §5.4: the null reverse-path
    local, at, domain = address.rpartition("@")
    return (local, domain) if at else (address, None)


def address_part(local: str, domain: str | None, part: str) -> str | None:
    """One part of an address (RFC 5228 §2.7.4, RFC 5233 §4); None when the part does not exist."""
    if part == "localpart":
        return local if domain is not None else None
    if part == "domain":
        return domain
    if part in ("user", "detail"):
        if domain is None:
            return None
        user, separator, detail = local.partition(SUBADDRESS_SEPARATOR)
        if part == "user":
            return user
        return detail if separator else None
    if domain is None:
        return local
    # :all writes the address out, quoting a local part that is not a dot-atom (RFC 5322 §3.4.1);
    # :localpart gives it unquoted (both as Dovecot does)
    return f"{quote_local(local)}@{domain}" if local or domain else ""


# --- body ------------------------------------------------------------------------------------------


def body_texts(content: bytes, root: mime.Part, transform: str, types: tuple[str, ...]) -> list[str]:
    """The texts the body test matches (RFC 5173 §5): the raw body, the decoded text parts, or the
    decoded parts of the given content types."""
    if transform == "raw":
        return [decode_text(content[root.body_start : root.end])]
    out: list[str] = []
    for part in root.walk():
        content_type = part.content_type
        if transform == "text":
            if part.is_multipart or part.message is not None or not content_type.startswith("text/"):
                continue
        elif not any(_type_matches(content_type, wanted) for wanted in types):
            continue
        if part.is_multipart:  # RFC 5173 §5.2: its prologue and epilogue
            if part.children:
                outside = content[part.body_start : part.children[0].start] + content[part.children[-1].end : part.end]
            else:
                outside = content[part.body_start : part.end]
            out.append(decode_text(outside))
            continue
        if part.message is not None:  # RFC 5173 §5.2: the header of the enclosed message
            out.append(decode_text(content[part.message.start : part.message.body_start]))
            continue
        header = content[part.start : part.body_start]
        text = _decoded(header, content[part.body_start : part.end], content_type)
        if transform == "text" and content_type == "text/html":
            text = _html_text(text)
        out.append(text)
    return out


def _type_matches(content_type: str, wanted: str) -> bool:
    wanted = wanted.lower()
    if wanted == "":
        return True
    if "/" in wanted:
        return content_type == wanted
    return content_type.split("/", 1)[0] == wanted


def _decoded(header: bytes, body: bytes, content_type: str) -> str:
    encoding = (header_value(header, "Content-Transfer-Encoding") or b"").strip().lower()
    raw = body
    try:
        if encoding == b"base64":
            data = re.sub(rb"[^A-Za-z0-9+/]", b"", body.split(b"=", 1)[0])
            data = data[:-1] if len(data) % 4 == 1 else data  # a lone trailing character carries no octet
            raw = binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        elif encoding == b"quoted-printable":
            raw = binascii.a2b_qp(body)
    except (binascii.Error, ValueError):
        raw = body
    if not content_type.startswith("text/"):
        return raw.decode("latin-1")
    parsed = parse_content_type(header_value(header, "Content-Type"))
    charset = (parsed.param("charset") if parsed else None) or "us-ascii"
    if charset.lower() in ("us-ascii", "ascii"):
        charset = "utf-8"  # 8-bit text mislabelled as ASCII is usually UTF-8
    return decode_charset(raw, charset)


def _html_text(html: str) -> str:
    """HTML as the words a reader sees (RFC 5173 §5.2 leaves the extraction to the implementation)."""
    text = _TAG.sub(" ", _BLOCK.sub(" ", html))
    text = _ENTITY.sub(lambda match: _ENTITIES[match.group(0)], text)
    return _SPACES.sub(" ", text).strip()
