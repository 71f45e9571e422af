"""RFC 5322 §3.4 address lists as IMAP ENVELOPE sees them: raw octets in, address structures out.

This is not :mod:`pochta.mail.address` (one SMTP mailbox, normalised): here the display names, source
routes and groups of a From/To/Cc header are kept as written, encoded words included, and any input
gives some answer. RFC 9051 §7.5.2 marks a group with ``(NIL NIL "name" NIL)`` before its members
and ``(NIL NIL NIL NIL)`` after them; :class:`EnvelopeAddress` holds the same four fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MISSING_MAILBOX = b"MISSING_MAILBOX"  # Dovecot's marker for "name only" entries, so the
MISSING_DOMAIN = b"MISSING_DOMAIN"  # structure is not taken for a group marker

_TOKEN = re.compile(
    rb"""
      (?P<ws>[ \t\r\n]+)
    | (?P<word>=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)
    | (?P<quoted>"(?:[^"\\]|\\.)*"?)
    | (?P<literal>\[(?:[^\]\\]|\\.)*\]?)
    | (?P<atom>[^ \t\r\n"(),.:;<>@\[\]\\]+)
    | (?P<special>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)

# The shapes nearly all mail has, answered by one regex instead of the tokenizer (a From or To of one
# address: 20 µs → 2 µs): ``a@b``, ``<a@b>``, ``Name Words <a@b>``, ``"Name" <a@b>``, comma-separated,
# with dot-atoms of ASCII atext (RFC 5322 §3.2.3) and no comments, groups, routes or encoded words.
# For these the tokenizer's answer is the text as written: the name is its words (one space apart),
# a quoted name its inside without outer whitespace.
_ATEXT = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = _ATEXT + rb"(?:\." + _ATEXT + rb")*"
_ADDR_SPEC = rb"(?P<mailbox>" + _DOT_ATOM + rb")@(?P<host>" + _DOT_ATOM + rb")"
_NAME = rb"(?P<phrase>" + _ATEXT + rb"(?: " + _ATEXT + rb')*)|"(?P<quoted>[^"\\]*)"'
_NEXT = rb"(?:[ \t]*,[ \t]*|\Z)"  # a comma between addresses, or the end
_ANGLE_MAILBOX = re.compile(rb"(?:(?:" + _NAME + rb") ?)?<" + _ADDR_SPEC + rb">" + _NEXT)
_BARE_MAILBOX = re.compile(_ADDR_SPEC + _NEXT)


@dataclass(frozen=True, slots=True)
class EnvelopeAddress:
    """One IMAP address structure: ``(name adl mailbox host)``; None renders as NIL."""

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


GROUP_END = EnvelopeAddress(None, None, None, None)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "quoted", "literal", "atom", "comment", "angle" or a special character
    text: bytes  # the value: unquoted for "quoted", the comment's inside for "comment"
    is_spaced: bool  # whitespace (or a comment) came before it
    inner: tuple[_Token, ...] = ()  # for "angle": the tokens between < and >


def parse_address_list(value: bytes) -> list[EnvelopeAddress]:
    """An address-list header value as envelope addresses, with group markers; never raises."""
    simple = _simple_list(value)
    return simple if simple is not None else _parse_tokens(value)


def _parse_tokens(value: bytes) -> list[EnvelopeAddress]:
    """Any address list, through the tokenizer."""
    tokens = _group_angles(_tokenize(value))
    out: list[EnvelopeAddress] = []
    current: list[_Token] = []
    is_in_group = False
    for token in tokens:
        if token.kind == ",":
            _flush(current, out)
        elif token.kind == ":" and not is_in_group and not _has_address(current):
            out.append(EnvelopeAddress(None, None, _phrase(current) or b"", None))
            current = []
            is_in_group = True
        elif token.kind == ";" and is_in_group:
            _flush(current, out)
            out.append(GROUP_END)
            is_in_group = False
        else:
            current.append(token)
    _flush(current, out)
    if is_in_group:
        out.append(GROUP_END)
    return out


def _simple_list(value: bytes) -> list[EnvelopeAddress] | None:
    """The addresses of a list made only of the simple shapes, else None (the tokenizer decides)."""
    if b"=?" in value:  # an encoded word is one token even across specials ("=?x@y?q?z?=")
        return None
    out: list[EnvelopeAddress] = []
    pos = 0
    while pos < len(value):
        match = _ANGLE_MAILBOX.match(value, pos)
        if match is not None:
            phrase, quoted = match.group("phrase", "quoted")
            name = phrase if quoted is None else quoted.strip() or None
        else:
            match = _BARE_MAILBOX.match(value, pos)
            if match is None:
                return None
            name = None
        out.append(EnvelopeAddress(name, None, match.group("mailbox"), match.group("host")))
        pos = match.end()
    return out or None


def _tokenize(value: bytes) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    is_spaced = False
    length = len(value)
    while pos < length:
        if value[pos] == 0x28:  # "(": comments nest (RFC 5322 §3.2.2)
            end, text = _comment(value, pos)
            tokens.append(_Token("comment", text, is_spaced))
            pos = end
            is_spaced = True
            continue
        match = _TOKEN.match(value, pos)
        if match is None:  # pragma: no cover - the last alternative matches any octet
            break
        pos = match.end()
        kind = match.lastgroup or "special"
        text = match.group(0)
        if kind == "ws":
            is_spaced = True
            continue
        if kind == "quoted":
            inner = text[1:-1] if len(text) > 1 and text.endswith(b'"') else text[1:]
            text = _QUOTED_PAIR.sub(rb"\1", inner)
        elif kind == "special":
            kind = text.decode("latin-1")
        tokens.append(_Token(kind, text, is_spaced))
        is_spaced = False
    return tokens


def _comment(value: bytes, start: int) -> tuple[int, bytes]:
    depth = 0
    pos = start
    while pos < len(value):
        octet = value[pos]
        if octet == 0x5C:  # backslash: quoted-pair
            pos += 2
            continue
        if octet == 0x28:
            depth += 1
        elif octet == 0x29:
            depth -= 1
            if depth == 0:
                return pos + 1, value[start + 1 : pos].strip()
        pos += 1
    return len(value), value[start + 1 :].strip()


def _group_angles(tokens: list[_Token]) -> list[_Token]:
    out: list[_Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind != "<":
            out.append(token)
            continue
        inner: list[_Token] = []
        while index < len(tokens) and tokens[index].kind != ">":
            inner.append(tokens[index])
            index += 1
        index += 1  # the ">", if there is one
        out.append(_Token("angle", b"", token.is_spaced, tuple(inner)))
    return out


def _has_address(tokens: list[_Token]) -> bool:
    return any(token.kind in ("@", "angle") for token in tokens)


def _flush(tokens: list[_Token], out: list[EnvelopeAddress]) -> None:
    if any(token.kind != "comment" for token in tokens):
        for chunk in _split_bare(tokens):
            address = _mailbox(chunk)
            if address is not None:
                out.append(address)
    tokens.clear()


def _split_bare(tokens: list[_Token]) -> list[list[_Token]]:
    """Mailer mistakes without angle brackets: ``Big Bug bb@bug.com`` (a name, then the address) and
    ``a@x b@y`` (no comma). Split at whitespace; each run after the last whole ``local@domain`` run
    that is not itself one belongs to the name of the following address."""
    if any(token.kind == "angle" for token in tokens):
        return [tokens]
    words = [token for token in tokens if token.kind != "comment"]
    runs: list[list[_Token]] = []
    for token in words:
        if token.is_spaced or not runs:
            runs.append([])
        runs[-1].append(token)
    whole = [_is_addr_spec(run) for run in runs]
    if (
        len(runs) < 2
        or not whole[-1]
        or not all(
            is_whole or (run[0].kind not in ("@", ".") and run[-1].kind not in ("@", "."))
            for run, is_whole in zip(runs, whole, strict=True)
        )
    ):
        return [tokens]
    out: list[list[_Token]] = []
    name: list[_Token] = []
    for run, is_whole in zip(runs, whole, strict=True):
        if not is_whole:
            name.extend(run)
            continue
        if name:
            quoted = b" ".join(token.text for token in name)
            out.append([_Token("quoted", quoted, False), _Token("angle", b"", True, tuple(run))])
        else:
            out.append(run)
        name = []
    return out


def _is_addr_spec(run: list[_Token]) -> bool:
    ats = [index for index, token in enumerate(run) if token.kind == "@"]
    return len(ats) == 1 and 0 < ats[0] < len(run) - 1


def _mailbox(tokens: list[_Token]) -> EnvelopeAddress | None:
    angle = next((token for token in tokens if token.kind == "angle"), None)
    if angle is not None:
        name = _phrase(tokens[: tokens.index(angle)])
        adl, mailbox, host = _addr_spec(list(angle.inner))
    else:
        adl, mailbox, host = _addr_spec(tokens)
        # A name in a trailing comment, "joe@example.com (Joe)", is the display name (as Dovecot does).
        name = next((token.text for token in tokens if token.kind == "comment" and token.text), None)
    if not mailbox and not host:
        if name is None:
            return None
        return EnvelopeAddress(name, None, MISSING_MAILBOX, MISSING_DOMAIN)
    return EnvelopeAddress(name, adl, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)


def _phrase(tokens: list[_Token]) -> bytes | None:
    out: list[bytes] = []
    for token in tokens:
        if token.kind in {"comment", "angle"}:
            continue
        if out and token.is_spaced:
            out.append(b" ")
        out.append(token.text)
    text = b"".join(out).strip()
    return text or None


def _addr_spec(tokens: list[_Token]) -> tuple[bytes | None, bytes | None, bytes | None]:
    words = [token for token in tokens if token.kind != "comment"]
    adl: bytes | None = None
    if words and words[0].kind == "@":
        colon = next((i for i, token in enumerate(words) if token.kind == ":"), None)
        if colon is not None:
            adl = b"".join(token.text for token in words[:colon]) or None
            words = words[colon + 1 :]
    at = max((i for i, token in enumerate(words) if token.kind == "@"), default=None)
    if at is None:
        return adl, _join(words) or None, None
    return adl, _join(words[:at]) or None, _join(words[at + 1 :]) or None


def _join(tokens: list[_Token]) -> bytes:
    return b"".join(token.text for token in tokens if token.kind != "angle")
