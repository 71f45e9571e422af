"""Binary content made safe to send in an IMAP literal.

A message may hold NUL octets (APPENDed as literal8, RFC 3516 §4.4, or received so), which no plain
IMAP literal may carry (RFC 9051 §4.3). The store keeps the octets as they arrived; BODY[] and RFC822
send the message with every leaf part whose body holds NUL base64-encoded (its Content-Transfer-Encoding
rewritten, as Dovecot does when it stores such a message), while BINARY[] returns the original octets.
"""

from __future__ import annotations

import base64
import re

from pochta.mail.mime import parse

_ENCODING_FIELD = re.compile(
    rb"^Content-Transfer-Encoding[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n", re.IGNORECASE | re.MULTILINE
)
_BLANK_LINE = re.compile(rb"\r?\n\Z")
_LINE = 76  # RFC 2045 §6.8: encoded lines are at most 76 characters


def encode_nul_parts(data: bytes) -> bytes | None:
    """``data`` with each leaf part that holds NUL re-encoded as base64; None when nothing holds NUL."""
    if b"\x00" not in data:
        return None
    out: list[bytes] = []
    position = 0
    for part in parse(data).walk():
        if part.children or part.message is not None or part.is_multipart:
            continue
        body = data[part.body_start : part.end]
        if b"\x00" not in body:
            continue
        header = data[part.start : part.body_start]
        blank = _BLANK_LINE.search(header)
        if blank is None or part.body_start == part.start:
            continue  # a part without a header block: no place to declare an encoding
        fields = _ENCODING_FIELD.sub(b"", header[: blank.start()])
        encoded = base64.b64encode(body)
        lines = b"\r\n".join(encoded[i : i + _LINE] for i in range(0, len(encoded), _LINE))
        out += [data[position : part.start], fields, b"Content-Transfer-Encoding: base64\r\n\r\n", lines]
        if part.end == len(data):
            out.append(b"\r\n")
        position = part.end
    if position == 0:
        return None
    out.append(data[position:])
    return b"".join(out)


def without_nul(data: bytes) -> bytes:
    """``data`` as a plain literal may carry it: NUL-holding leaf parts base64-encoded, and a NUL left
    anywhere else (a header, a preamble) turned into a space."""
    return (encode_nul_parts(data) or data).replace(b"\x00", b" ")
