"""The Authentication-Results header field (RFC 8601): writing ours, finding forged ones.

One field carries every method's result: ``mx.example; spf=pass smtp.mailfrom=a@b.example; dkim=pass
header.d=b.example header.s=s1 header.b=AbCdEfGh; dmarc=pass header.from=b.example; arc=none``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pochta.mail.headers import FIELD, unfold


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodResult:
    """One ``method=result`` with its comment and ``ptype.property=value`` pairs (RFC 8601 §2.2)."""

    method: str
    result: str
    comment: str = ""
    properties: tuple[tuple[str, str], ...] = ()


# RFC 2045 §5.1 token: printable ASCII but tspecials; RFC 8601 §2.2 also allows a bare local-part@domain.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_ADDRESS = re.compile(r"[!#$%&'*+\-/=?^_`{|}~.0-9A-Za-z]*@[0-9A-Za-z\-.]+")


def _pvalue(value: str) -> str:
    if _TOKEN.fullmatch(value) or _ADDRESS.fullmatch(value):
        return value
    return '"' + re.sub(r'(["\\])', r"\\\1", "".join(c for c in value if c.isprintable())) + '"'


def _comment(text: str) -> str:
    return "(" + re.sub(r"([()\\])", r"\\\1", "".join(c for c in text if c.isprintable())) + ")"


def header_value(authserv_id: str, results: Sequence[MethodResult]) -> str:
    """The field value; ``none`` when no method ran (RFC 8601 §2.2)."""
    if not results:
        return f"{authserv_id}; none"
    parts = []
    for result in results:
        words = [f"{result.method}={result.result}"]
        if result.comment:
            words.append(_comment(result.comment))
        words += [f"{name}={_pvalue(value)}" for name, value in result.properties if value]
        parts.append(" ".join(words))
    return f"{authserv_id}; " + "; ".join(parts)


_CFWS = re.compile(rb"(?:\s|\((?:[^()\\]|\\.)*\))*")


def authserv_id(value: bytes) -> str:
    """The authserv-id a field value names (its first word, after any comment), lower case."""
    value = unfold(value)
    start = _CFWS.match(value)
    rest = value[start.end() if start else 0 :]
    word = re.match(rb'"((?:[^"\\]|\\.)*)"|[^\s;()]+', rest)
    if not word:
        return ""
    text = word.group(1) if word.group(1) is not None else word.group(0)
    return text.decode("utf-8", "replace").lower()


def forged_fields(header_block: bytes, our_id: str) -> list[tuple[int, int]]:
    """Byte ranges (start, end including the line break) of Authentication-Results fields in
    ``header_block`` that claim to be ours: RFC 8601 §5 says a border MTA must delete them."""
    if b"authentication-results" not in header_block.lower():
        return []
    spans = []
    for match in FIELD.finditer(header_block):
        if match.group(1).lower() != b"authentication-results":
            continue
        if authserv_id(match.group(2)) == our_id.lower():
            end = match.end()
            if header_block[end : end + 1] == b"\n":
                end += 1
            spans.append((match.start(), end))
    return spans
