"""The vacation action's decisions that the message and the environment can settle (RFC 5230 §4.5-4.6,
RFC 3834 §2): whom to answer, with what subject, under which handle."""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import hashlib

from pochta.filters.sieve.message import Headers, addresses
from pochta.filters.sieve.model import Vacation

# RFC 5230 §4.6 / RFC 2369 / RFC 2919: mail from lists gets no auto-reply.
_LIST_FIELDS = ("list-id", "list-help", "list-subscribe", "list-unsubscribe", "list-post", "list-owner", "list-archive")
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
# RFC 3834 §2: addresses that are not people.
_ROBOT_LOCALS = frozenset({"mailer-daemon", "listserv", "majordomo", "mailer", "postmaster", "noreply", "no-reply"})
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")  # RFC 5230 §4.5


def _normal(address: str) -> str:
    """Addresses compare without case: a user's own address in another case is still theirs."""
    return address.strip().strip("<>").lower()


def _without_detail(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def skip_reason(headers: Headers, *, sender: str, recipient: str, own: frozenset[str] | set[str]) -> str | None:
    """Why no reply goes out, or None when one may. ``own`` holds the user's addresses (the account,
    its aliases, :addresses); ``recipient`` is this delivery's envelope recipient."""
    if not sender:
        return "null sender"  # RFC 5230 §4.6, RFC 3834 §2
    for value in headers.values("auto-submitted"):
        if value.split(";", 1)[0].strip().lower() != "no":
            return "auto-submitted message"  # RFC 3834 §2
    for name in _LIST_FIELDS:
        if headers.has(name):
            return f"mailing list message ({name})"
    for value in headers.values("precedence"):
        if value.strip().lower() in _BULK_PRECEDENCE:
            return "bulk message"
    local = sender.rpartition("@")[0].lower()
    if local in _ROBOT_LOCALS or local.startswith("owner-") or local.endswith(("-request", "-owner", "-bounces")):
        return "sender is a robot"
    mine = {_normal(address) for address in own} | {_normal(recipient), _normal(_without_detail(recipient))}
    mine.discard("")
    if _normal(sender) in mine or _normal(_without_detail(sender)) in mine:
        return "sender is the user"
    for name in _RECIPIENT_FIELDS:
        for raw in headers.raw(name):
            for local_part, domain in addresses(raw):
                if domain is None:
                    continue
                address = _normal(f"{local_part}@{domain}")
                if address in mine or _normal(_without_detail(address)) in mine:
                    return None
    return "user not in To/Cc/Bcc"  # RFC 5230 §4.5


def default_subject(headers: Headers) -> str:
    """RFC 5230 §4.3 suggests "Auto:" and the original subject."""
    subjects = headers.values("subject")
    original = subjects[0].strip() if subjects else ""
    return f"Auto: {original}" if original else "Automated reply"


def default_handle(*, reason: str, subject: str | None, from_: str | None, is_mime: bool) -> str:
    """RFC 5230 §4.2: without :handle, the same arguments make the same handle."""
    text = "\0".join((reason, subject or "", from_ or "", "mime" if is_mime else ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def compose_reply(action: Vacation, *, date: dt.datetime, message_id: str) -> bytes:
    """The auto-reply message for ``action`` (RFC 5230 §5, RFC 3834 §3), CRLF line ends.

    Send it with a null envelope sender (RFC 3834 §3.3) to ``action.to``. ``message_id`` is the
    new message's id without angle brackets. With ``:mime`` the reason is a MIME entity (its own
    header fields, a blank line, its body), else plain UTF-8 text.
    """
    fields = [
        ("From", _address(action.from_)),
        ("To", _address(action.to)),
        ("Subject", _encoded(action.subject)),
        ("Date", email.utils.format_datetime(date)),
        ("Message-ID", f"<{message_id}>"),
    ]
    if action.in_reply_to:
        fields.append(("In-Reply-To", action.in_reply_to))  # RFC 3834 §3.1.5
    if action.references:
        fields.append(("References", action.references))
    fields += [("Auto-Submitted", "auto-replied (vacation)"), ("MIME-Version", "1.0")]  # RFC 3834 §5
    body = action.body.replace("\r\n", "\n").replace("\n", "\r\n")
    body = body if body.endswith("\r\n") else body + "\r\n"
    if action.mime:
        entity = body
    else:
        entity = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    header = "".join(f"{name}: {_single_line(value)}\r\n" for name, value in fields)
    return (header + entity).encode("utf-8")


def _address(text: str) -> str:
    """An address field value; a non-ASCII display name becomes RFC 2047 words."""
    if text.isascii():
        return text
    name, address = email.utils.parseaddr(text)
    return email.utils.formataddr((name, address), charset="utf-8")


def _single_line(value: str) -> str:
    return " ".join(value.split())


def _encoded(text: str) -> str:
    return text if text.isascii() else email.header.Header(text, "utf-8").encode()
