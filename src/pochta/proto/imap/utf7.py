"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3), as IMAP4rev1 clients send them.

Printable US-ASCII stands for itself, ``&`` is ``&-``, and anything else is UTF-16 in modified
base64 (``,`` instead of ``/``, no padding) between ``&`` and ``-``. Decoding is strict: every name
has exactly one encoding, so ``&AGE-`` (an encoded ``a``) or two adjacent encoded runs are refused.
"""

from __future__ import annotations

import binascii
import re

_RUN = re.compile(r"&([A-Za-z0-9+,]*)-")


class Utf7Error(ValueError):
    """A name that is not valid modified UTF-7."""


def encode_mailbox(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append(_encode_run("".join(pending)))
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append(_encode_run("".join(pending)))
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """The Unicode name; raises :class:`Utf7Error` for anything not produced by :func:`encode_mailbox`."""
    out: list[str] = []
    position = 0
    previous_run_end = -1
    while position < len(name):
        char = name[position]
        if char != "&":
            if not 0x20 <= ord(char) <= 0x7E:
                raise Utf7Error("mailbox name has a character outside printable US-ASCII")
            out.append(char)
            position += 1
            continue
        match = _RUN.match(name, position)
        if match is None:
            raise Utf7Error("unterminated or invalid '&' sequence in mailbox name")
        encoded = match.group(1)
        if not encoded:
            out.append("&")
        else:
            if previous_run_end == position:
                raise Utf7Error("adjacent encoded sequences in mailbox name")  # RFC 3501 §5.1.3
            out.append(_decode_run(encoded))
            previous_run_end = match.end()
        position = match.end()
    return "".join(out)


def _encode_run(text: str) -> str:
    data = text.encode("utf-16-be", "surrogatepass")
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")
    return "&" + encoded.replace("/", ",") + "-"


def _decode_run(encoded: str) -> str:
    if len(encoded) % 4 == 1:
        raise Utf7Error("truncated base64 in mailbox name")
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise Utf7Error("bad base64 in mailbox name") from exc
    if len(data) % 2:
        raise Utf7Error("odd number of octets in encoded mailbox name")
    try:
        text = data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise Utf7Error("bad UTF-16 in mailbox name") from exc
    if any(0x20 <= ord(char) <= 0x7E for char in text):
        raise Utf7Error("printable US-ASCII must not be encoded in a mailbox name")  # RFC 3501 §5.1.3
    if _encode_run(text)[1:-1] != encoded:
        raise Utf7Error("non-canonical base64 in mailbox name")  # non-zero padding bits
    return text
