"""The content of one MIME part: its transfer encoding undone (BINARY, RFC 3516) and as text (SEARCH)."""

from __future__ import annotations

import binascii
import re

from pochta.mail.headers import decode_charset, header_value, parse_content_type, split_value

IDENTITY_ENCODINGS = frozenset({b"", b"7bit", b"8bit", b"binary"})
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


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
        return binascii.a2b_qp(body)
    return None


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
