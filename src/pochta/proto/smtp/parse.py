"""Parsing SMTP command lines: verbs, paths, ESMTP parameters (RFC 5321 §4.1), xtext (RFC 3461 §4).

Each parser takes the decoded command argument and returns an event, or raises :class:`CommandError`
carrying the reply the peer gets. Sequencing is the server's business, not this module's.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from pochta.mail.address import Address, AddressError, normalize_domain, parse_address

from .events import Auth, Body, MailFrom, Notify, Orcpt, RcptTo, Ret
from .replies import Reply, syntax_error


class CommandError(Exception):
    """A command the peer got wrong; ``reply`` says how."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """What MAIL and RCPT may carry in this session: the keywords of the advertised extensions."""

    params: frozenset[str]  # e.g. {"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH", "NOTIFY", "ORCPT"}
    bodies: frozenset[Body]
    max_message_size: int | None  # SIZE over this is refused in MAIL (RFC 1870 §6.2)


_VERB = re.compile(r"[A-Za-z]{1,16}")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # RFC 5321 §4.1.2 esmtp-keyword
# RFC 5321 §4.1.2 esmtp-value: any printable ASCII but "=" and SP; RFC 6531 §3.3 adds UTF-8
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_FROM = re.compile(r"FROM:[ \t]*", re.IGNORECASE)  # a space after the colon is common (RFC 5321 §4.1.1.2)
_TO = re.compile(r"TO:[ \t]*", re.IGNORECASE)
_BDAT = re.compile(r"(\d{1,20})(?:[ \t]+(LAST))?[ \t]*", re.IGNORECASE)  # RFC 3030 §2
_MECHANISM = re.compile(r"[A-Za-z0-9_-]{1,20}")  # RFC 4422 §3.1
_SIZE = re.compile(r"\d{1,20}")  # RFC 1870 §4 size-value
_ADDR_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 3461 §4.2 atom
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")  # RFC 6533 §3 utf-8-addr-xtext
_MAX_ENVID = 100  # RFC 3461 §4.4

_BAD_SENDER = "5.1.7"  # RFC 3463 §3.2 bad sender's mailbox address syntax
_BAD_RECIPIENT = "5.1.3"  # RFC 3463 §3.2 bad destination mailbox address syntax


def split_command(line: str) -> tuple[str, str]:
    """The upper-cased verb and the argument after it (RFC 5321 §2.4: verbs are case-insensitive)."""
    verb, _, argument = line.partition(" ")
    if not _VERB.fullmatch(verb):
        return "", line
    return verb.upper(), argument.strip(" \t")


def parse_ehlo(argument: str) -> str:
    """The client's name from EHLO/HELO; its policy (does it resolve?) is the application's."""
    name = argument.split(" ", 1)[0]
    if not name:
        raise CommandError(syntax_error("EHLO and HELO need a domain or address literal"))  # §4.1.1.1
    return name


def parse_mail(argument: str, *, offer: Offer) -> MailFrom:
    """``FROM:<reverse-path> [params]`` (RFC 5321 §4.1.1.2)."""
    match = _FROM.match(argument)
    if not match:
        raise CommandError(syntax_error("syntax: MAIL FROM:<address>"))
    inner, rest = _split_path(argument[match.end() :], status=_BAD_SENDER)
    params = parse_params(rest)
    is_smtputf8 = "SMTPUTF8" in params
    path = None if inner == "" else _parse_mailbox(inner, status=_BAD_SENDER, is_smtputf8=is_smtputf8)
    size: int | None = None
    body: Body | None = None
    ret: Ret | None = None
    envid: str | None = None
    auth: str | None = None
    for keyword, value in params.items():
        if keyword not in offer.params or keyword in ("NOTIFY", "ORCPT"):
            raise CommandError(_unknown_param(keyword))
        if keyword == "SIZE":
            if value is None or not _SIZE.fullmatch(value):
                raise CommandError(syntax_error("SIZE needs a number"))
            size = int(value)
            if offer.max_message_size is not None and size > offer.max_message_size:
                raise CommandError(  # RFC 1870 §6.2
                    Reply(code=552, status="5.3.4", text="message size exceeds fixed maximum message size")
                )
        elif keyword == "BODY":
            body = _parse_body(value, offer=offer)
        elif keyword == "SMTPUTF8":
            if value is not None:
                raise CommandError(syntax_error("SMTPUTF8 takes no value"))  # RFC 6531 §3.4
        elif keyword == "RET":
            ret = _parse_ret(value)
        elif keyword == "ENVID":
            envid = decode_xtext(_required(keyword, value))
            if len(envid) > _MAX_ENVID:
                raise CommandError(syntax_error("ENVID longer than 100 characters"))
        elif keyword == "AUTH":
            auth = decode_xtext(_required(keyword, value))  # RFC 4954 §5
    return MailFrom(
        path=path,
        size=size,
        body=body,
        is_smtputf8=is_smtputf8,
        ret=ret,
        envid=envid,
        auth=auth,
        params=params,
    )


def parse_rcpt(argument: str, *, offer: Offer, hostname: str, is_smtputf8: bool) -> RcptTo:
    """``TO:<forward-path> [params]`` (RFC 5321 §4.1.1.3)."""
    match = _TO.match(argument)
    if not match:
        raise CommandError(syntax_error("syntax: RCPT TO:<address>"))
    inner, rest = _split_path(argument[match.end() :], status=_BAD_RECIPIENT)
    params = parse_params(rest)
    is_bare_postmaster = inner.lower() == "postmaster"  # RFC 5321 §4.1.1.3: MUST be accepted
    if is_bare_postmaster:
        path = Address(inner, normalize_domain(hostname))
    elif inner == "":
        raise CommandError(syntax_error("RCPT TO:<> is not a recipient", status=_BAD_RECIPIENT))
    else:
        path = _parse_mailbox(inner, status=_BAD_RECIPIENT, is_smtputf8=is_smtputf8)
    notify: frozenset[Notify] | None = None
    orcpt: Orcpt | None = None
    for keyword, value in params.items():
        if keyword not in offer.params or keyword not in ("NOTIFY", "ORCPT"):
            raise CommandError(_unknown_param(keyword))
        if keyword == "NOTIFY":
            notify = _parse_notify(_required(keyword, value))
        else:
            orcpt = _parse_orcpt(_required(keyword, value))
    return RcptTo(path=path, notify=notify, orcpt=orcpt, is_bare_postmaster=is_bare_postmaster, params=params)


def parse_params(text: str) -> dict[str, str | None]:
    """ESMTP parameters ``KEYWORD[=value]`` separated by spaces (RFC 5321 §4.1.2), keywords upper-cased."""
    params: dict[str, str | None] = {}
    for item in text.split():
        keyword, has_value, value = item.partition("=")
        if not _KEYWORD.fullmatch(keyword) or (has_value and not _VALUE.fullmatch(value)):
            raise CommandError(syntax_error(f"bad parameter syntax {item[:40]!r}"))
        keyword = keyword.upper()
        if keyword in params:
            raise CommandError(syntax_error(f"parameter {keyword} given twice"))
        params[keyword] = value if has_value else None
    return params


def parse_bdat(argument: str) -> tuple[int, bool]:
    """``BDAT chunk-size [LAST]`` (RFC 3030 §2)."""
    match = _BDAT.fullmatch(argument)
    if not match:
        raise CommandError(syntax_error("syntax: BDAT size [LAST]"))
    return int(match.group(1)), match.group(2) is not None


def parse_auth(argument: str) -> Auth:
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4); "=" is an empty initial response."""
    mechanism, _, initial = argument.partition(" ")
    initial = initial.strip(" ")
    if not _MECHANISM.fullmatch(mechanism) or " " in initial:
        raise CommandError(syntax_error("syntax: AUTH mechanism [initial-response]"))
    response = None if initial == "" else b"" if initial == "=" else decode_base64(initial)
    return Auth(mechanism=mechanism.upper(), initial_response=response)


def decode_base64(text: str) -> bytes:
    """Strict base64 of a SASL response; a bad one is a 501 (RFC 4954 §4)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CommandError(Reply(code=501, status="5.5.2", text="cannot decode base64 response")) from exc


def decode_xtext(text: str) -> str:
    """Decode RFC 3461 §4 xtext: ``+HH`` is the octet HH; other characters stand for themselves."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "+":
            digits = text[index + 1 : index + 3]
            if len(digits) != 2 or not all(c in "0123456789ABCDEFabcdef" for c in digits):
                raise CommandError(syntax_error("bad xtext escape"))
            out.append(int(digits, 16))
            index += 3
            continue
        if char == "=" or (char.isascii() and not "!" <= char <= "~"):
            raise CommandError(syntax_error("bad xtext character"))
        out += char.encode("utf-8")  # non-ASCII is tolerated under SMTPUTF8 (RFC 6533 §3)
        index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(syntax_error("xtext is not UTF-8")) from exc


def _split_path(text: str, *, status: str) -> tuple[str, str]:
    """The path inside ``<...>`` with any source route dropped, and the text after it."""
    if not text.startswith("<"):
        raise CommandError(syntax_error("address must be in angle brackets"))  # RFC 5321 §4.1.2 Path
    index = text.find(">")
    if index == -1 or '"' in text[:index]:  # a quoted local part may hold ">": walk it (the usual path has none)
        index = _path_end(text)
    inner, rest = text[1:index], text[index + 1 :]
    if rest and not rest.startswith((" ", "\t")):
        raise CommandError(syntax_error("space needed between address and parameters"))
    return _drop_source_route(inner, status=status), rest


def _path_end(text: str) -> int:
    """Where the ``>`` closing a path with a quoted local part is."""
    index = 1
    is_quoted = False
    while index < len(text):
        char = text[index]
        if char == "\\" and is_quoted:
            index += 2
            continue
        if char == '"':
            is_quoted = not is_quoted
        elif char == ">" and not is_quoted:
            return index
        index += 1
    raise CommandError(syntax_error("unterminated address, missing '>'"))


def _drop_source_route(inner: str, *, status: str) -> str:
    """``@a,@b:user@c`` → ``user@c``: source routes are accepted and ignored (RFC 5321 §4.1.2, App. C)."""
    if not inner.startswith("@"):
        return inner
    index = 0
    while True:
        if inner[index : index + 1] != "@":
            break
        end = index + 1
        if inner[end : end + 1] == "[":
            end = inner.find("]", end)
            if end == -1:
                break
            end += 1
        while end < len(inner) and inner[end] not in ",:":
            end += 1
        try:
            normalize_domain(inner[index + 1 : end])
        except AddressError:
            break
        if inner[end : end + 1] == ":":
            return inner[end + 1 :]
        if inner[end : end + 1] != ",":
            break
        index = end + 1
    raise CommandError(syntax_error("bad source route", status=status))


def _parse_mailbox(inner: str, *, status: str, is_smtputf8: bool) -> Address:
    if not inner.isascii() and not is_smtputf8:
        raise CommandError(  # RFC 6531 §3.5: UTF-8 addresses need the SMTPUTF8 parameter
            Reply(code=553, status="5.6.7", text="non-ASCII address needs SMTPUTF8")
        )
    try:
        return parse_address(inner)
    except AddressError as exc:
        raise CommandError(syntax_error(f"bad address syntax: {exc}", status=status)) from exc


def _parse_body(value: str | None, *, offer: Offer) -> Body:
    try:
        body = Body(_required("BODY", value).upper())
    except ValueError as exc:
        raise CommandError(syntax_error("BODY must be 7BIT, 8BITMIME or BINARYMIME")) from exc
    if body not in offer.bodies:
        raise CommandError(_unknown_param(f"BODY={body.value}"))
    return body


def _parse_ret(value: str | None) -> Ret:
    try:
        return Ret(_required("RET", value).upper())
    except ValueError as exc:
        raise CommandError(syntax_error("RET must be FULL or HDRS")) from exc  # RFC 3461 §4.3


def _parse_notify(value: str) -> frozenset[Notify]:
    try:
        notify = frozenset(Notify(item.upper()) for item in value.split(","))
    except ValueError as exc:
        raise CommandError(syntax_error("NOTIFY must be NEVER or SUCCESS, FAILURE, DELAY")) from exc
    if Notify.NEVER in notify and len(notify) > 1:
        raise CommandError(syntax_error("NOTIFY=NEVER stands alone"))  # RFC 3461 §4.1
    return notify


def _parse_orcpt(value: str) -> Orcpt:
    addr_type, has_separator, text = value.partition(";")  # RFC 3461 §4.2 addr-type ";" xtext
    if not has_separator or not _ADDR_TYPE.fullmatch(addr_type) or not text:
        raise CommandError(syntax_error("syntax: ORCPT=addr-type;address"))
    address = decode_xtext(text)
    if addr_type.lower() == "utf-8":  # RFC 6533 §3: \x{HEX} escapes of Unicode characters
        try:
            address = _UTF8_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), address)
        except (ValueError, OverflowError) as exc:
            raise CommandError(syntax_error("bad utf-8-addr escape")) from exc
    return Orcpt(addr_type=addr_type.lower(), address=address)


def _required(keyword: str, value: str | None) -> str:
    if value is None:
        raise CommandError(syntax_error(f"{keyword} needs a value"))
    return value


def _unknown_param(keyword: str) -> Reply:
    return Reply(code=555, status="5.5.4", text=f"{keyword} parameter not recognized")  # RFC 5321 §4.1.1.11
