"""The content of one MIME part: its transfer encoding undone (BINARY, RFC 3516) and as text (SEARCH)."""

from __future__ import annotations

import binascii
import re

from pochta.mail.headers import decode_charset, header_value, parse_content_type, split_value

IDENTITY_ENCODINGS = frozenset({b"", b"7bit", b"8bit", b"binary"})
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_HEX_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def transfer_encoding(header: bytes) -> bytes:
    """The lowercase Content-Transfer-Encoding of a part's header block (b"" when absent)."""
    value = header_value(header, "Content-Transfer-Encoding")
    return split_value(value)[0].lower() if value else b""


def decode_body(body: bytes, encoding: bytes) -> bytes | None:
    """``body`` with its transfer encoding undone, or None for an encoding we do not know."""
    if encoding in IDENTITY_ENCODINGS:
        return body
    if encoding == b"base64":
        data = _NOT_BASE64.sub(b"", body)  # RFC 2045 §6.8: ignore characters outside the alphabet
        if len(data) % 4 == 1:
            data = data[:-1]
        data += b"=" * (-len(data) % 4)
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            return b""
    if encoding == b"quoted-printable":
        return decode_quoted_printable(body)
    return None


def decode_quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: trailing whitespace of a line is transport padding and goes (rule 3), ``=`` at the
    end of a line (whitespace after it allowed) is a soft line break (rule 5), ``=XX`` is an octet, and a
    ``=`` that starts neither stays as it is. Lines end in CRLF, whatever the input used."""
    lines = body.split(b"\n")
    out: list[bytes] = []
    for index, raw in enumerate(lines):
        is_last = index == len(lines) - 1
        line = raw.removesuffix(b"\r").rstrip(b" \t")
        is_soft = line.endswith(b"=")
        out.append(_HEX_ESCAPE.sub(_unescape, line[:-1] if is_soft else line))
        if not is_soft and not is_last:
            out.append(b"\r\n")
    return b"".join(out)


def _unescape(match: re.Match[bytes]) -> bytes:
    return bytes((int(match.group(1), 16),))


def body_text(header: bytes, body: bytes) -> str:
    """A leaf part's body as text: decoded, in its charset (UTF-8 when none is given)."""
    decoded = decode_body(body, transfer_encoding(header))
    if decoded is None:
        decoded = body
    content_type = parse_content_type(header_value(header, "Content-Type"))
    charset = (content_type.param("charset") if content_type else None) or "utf-8"
    if charset.lower() in ("us-ascii", "ascii"):
        charset = "utf-8"
    return decode_charset(decoded, charset)
