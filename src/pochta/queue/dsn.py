"""Delivery status notifications (RFC 3464): who gets one, and the multipart/report that says it.

Pure: the caller passes the clock, the Message-ID and the original message (whole, or only its header
block when it is too large to read). The caller sends the result with the null reverse-path,
``MAIL FROM:<>`` (RFC 5321 §4.5.5, RFC 3461 §6.1), so that a bounce never causes another bounce.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from pochta.mail.envelope import Envelope, Recipient
from pochta.proto.smtp.replies import Reply

_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")  # RFC 3463 §2
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_NO_CONTROLS = re.compile(r"[^\x00-\x1f\x7f]*")
_MAX_DIAGNOSTIC = 900  # RFC 5322 §2.1.1: lines of at most 998 octets


class Action(enum.Enum):
    """RFC 3464 §2.3.3."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"  # handed to a server that does not do DSN (RFC 3461 §6.2.1)
    EXPANDED = "expanded"


# RFC 3461 §4.1: the NOTIFY keyword that asks for each action
_NOTIFY_FOR = {
    Action.FAILED: "FAILURE",
    Action.DELAYED: "DELAY",
    Action.DELIVERED: "SUCCESS",
    Action.RELAYED: "SUCCESS",
    Action.EXPANDED: "SUCCESS",
}
DEFAULT_NOTIFY = frozenset({"FAILURE", "DELAY"})  # RFC 3461 §4.1: without NOTIFY, FAILURE or FAILURE,DELAY


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientStatus:
    """What happened to one recipient (RFC 3464 §2.3)."""

    recipient: Recipient
    action: Action
    status: str  # x.y.z (RFC 3463)
    reply: Reply | None = None  # the remote server's reply, for Diagnostic-Code
    remote_mta: str | None = None  # the host that gave ``reply``
    last_attempt_at: datetime | None = None
    will_retry_until: datetime | None = None  # for Action.DELAYED

    def __post_init__(self) -> None:
        if not _STATUS.fullmatch(self.status):
            raise ValueError(f"bad status code {self.status!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnLimits:
    """How much of the original message a failure report carries (RFC 3461 §4.3)."""

    max_full: int = 10 * 2**20  # RET=FULL: the whole message up to this size, else its headers
    max_unrequested: int = 256 * 2**10  # no RET: the whole message only when it is this small


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A DSN ready to queue: send it with MAIL FROM:<> to ``recipient``."""

    recipient: str  # the original envelope sender
    content: bytes
    is_8bit: bool  # send with BODY=8BITMIME
    is_smtputf8: bool  # an address is not ASCII: send with SMTPUTF8 (RFC 6533)


def wants_notice(recipient: Recipient, action: Action) -> bool:
    """Whether this recipient's NOTIFY asks for a DSN about ``action`` (RFC 3461 §4.1)."""
    notify = frozenset(word.upper() for word in recipient.notify) or DEFAULT_NOTIFY
    if "NEVER" in notify:
        return False
    return _NOTIFY_FOR[action] in notify


def notices_to_send(envelope: Envelope, statuses: Sequence[RecipientStatus]) -> tuple[RecipientStatus, ...]:
    """The statuses to report to the sender; none when the sender is the null reverse-path."""
    if not envelope.mail_from:  # RFC 5321 §4.5.5, RFC 3461 §6.1: never notify the null sender
        return ()
    return tuple(status for status in statuses if wants_notice(status.recipient, status.action))


def build_report(
    *,
    envelope: Envelope,
    statuses: Sequence[RecipientStatus],
    hostname: str,
    arrival_date: datetime,
    now: datetime,
    message_id: str,
    original: bytes,
    is_header_only: bool = False,
    limits: ReturnLimits | None = None,
) -> Report:
    """The multipart/report; report-type=delivery-status for ``statuses`` (RFC 3464 §2, RFC 6522).

    ``original`` is the message, or its header block when ``is_header_only``. ``message_id`` is the
    Message-ID of the report, with its angle brackets. Filter with :func:`notices_to_send` first.
    """
    if not statuses:
        raise ValueError("a report needs at least one recipient status")
    if not envelope.mail_from:
        raise ValueError("no report goes to the null reverse-path")
    limits = limits or ReturnLimits()
    actions = {status.action for status in statuses}
    is_global = envelope.is_smtputf8 or not envelope.mail_from.isascii()
    is_global = is_global or any(not s.recipient.address.isascii() for s in statuses)
    returned_type, returned = _returned(envelope, original, is_header_only, Action.FAILED in actions, limits)
    if is_global:  # RFC 6533 §6: the internationalized forms
        returned_type = {"message/rfc822": "message/global"}.get(returned_type, "message/global-headers")
    status_type = "message/global-delivery-status" if is_global else "message/delivery-status"
    parts = [
        _part("text/plain; charset=utf-8", _human_text(statuses, hostname).encode()),
        _part(status_type, _delivery_status(envelope, statuses, hostname, arrival_date, is_global=is_global)),
        _part(returned_type, returned),
    ]
    boundary = _boundary(message_id, parts)
    if Action.FAILED in actions:
        subject = "Undelivered Mail Returned to Sender"
    elif Action.DELAYED in actions:
        subject = "Delayed Mail (still being retried)"
    else:
        subject = "Successful Mail Delivery Report"
    header = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{envelope.mail_from}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5.1; RFC 3464 §2 reports are responses
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',  # RFC 6522 §3
    ]
    body = bytearray("\r\n".join(header).encode() + b"\r\n\r\nThis is a MIME-encapsulated delivery status report.\r\n")
    for part in parts:
        body += f"\r\n--{boundary}\r\n".encode() + part
    body += f"\r\n--{boundary}--\r\n".encode()
    content = bytes(body)
    return Report(
        recipient=envelope.mail_from,
        content=content,
        is_8bit=not content.isascii(),
        is_smtputf8=is_global,
    )


def _returned(
    envelope: Envelope, original: bytes, is_header_only: bool, is_failure: bool, limits: ReturnLimits
) -> tuple[str, bytes]:
    """The third part: the whole message or its header block (RFC 3461 §4.3, RFC 3462 §2 headers)."""
    ret = (envelope.ret or "").upper()
    limit = limits.max_full if ret == "FULL" else limits.max_unrequested
    # RFC 3461 §4.3: RET asks about failed DSNs; others carry the headers only
    if is_failure and not is_header_only and ret != "HDRS" and len(original) <= limit:
        return "message/rfc822", original if original.endswith(b"\n") else original + b"\r\n"
    return "text/rfc822-headers", _header_block(original)


def _header_block(message: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = message.find(separator)
        if end != -1:
            return message[: end + len(separator) // 2]
    return message if message.endswith(b"\n") else message + b"\r\n"


def _part(content_type: str, data: bytes) -> bytes:
    encoding = "7bit" if data.isascii() else "8bit"  # RFC 2046 §5.2.1: message/* only 7bit, 8bit, binary
    return f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n".encode() + data


def _boundary(message_id: str, parts: list[bytes]) -> str:
    seed = hashlib.sha256(message_id.encode()).hexdigest()[:32]
    counter = 0
    while True:
        boundary = f"=_report_{seed}_{counter}"
        if not any(boundary.encode() in part for part in parts):  # RFC 2046 §5.1.1: not in any part
            return boundary
        counter += 1


def _human_text(statuses: Sequence[RecipientStatus], hostname: str) -> str:
    lines = [f"This is the mail system at host {hostname}.", ""]
    groups = [
        (Action.FAILED, "Your message could not be delivered to these recipients:"),
        (Action.DELAYED, "Your message could not be delivered yet to these recipients; no action is required:"),
        (Action.DELIVERED, "Your message was delivered to these recipients:"),
        (Action.RELAYED, "Your message was passed on, without further notification, for these recipients:"),
        (Action.EXPANDED, "Your message was delivered to these lists or aliases:"),
    ]
    for action, heading in groups:
        chosen = [s for s in statuses if s.action is action]
        if not chosen:
            continue
        lines += [heading, ""]
        for status in chosen:
            why = _diagnostic(status.reply) if status.reply else f"status {status.status}"
            host = f" (said {status.remote_mta})" if status.remote_mta and status.reply else ""
            lines.append(f"  <{status.recipient.address}>: {why}{host}")
            if status.will_retry_until is not None:
                lines.append(f"    delivery will be retried until {format_datetime(status.will_retry_until)}")
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def _diagnostic(reply: Reply) -> str:
    text = " ".join(line for line in reply.lines if line)
    joined = " ".join(part for part in (str(reply.code), reply.status, text) if part)
    return joined[:_MAX_DIAGNOSTIC]


def _value(text: str, *, is_global: bool) -> str:
    """A field value as given when it is safe in a header, else xtext (RFC 3461 §4)."""
    if _PRINTABLE.fullmatch(text) or (is_global and _NO_CONTROLS.fullmatch(text)):
        return text
    return "".join(
        chr(octet) if 0x21 <= octet <= 0x7E and octet not in (0x2B, 0x3D) else f"+{octet:02X}"
        for octet in text.encode("utf-8")
    )


def _delivery_status(
    envelope: Envelope,
    statuses: Sequence[RecipientStatus],
    hostname: str,
    arrival_date: datetime,
    *,
    is_global: bool,
) -> bytes:
    """The per-message fields, then one block per recipient (RFC 3464 §2.1)."""
    message = []
    if envelope.envid is not None:
        message.append(f"Original-Envelope-Id: {_value(envelope.envid, is_global=is_global)}")  # §2.2.1
    message.append(f"Reporting-MTA: dns; {hostname}")  # RFC 3464 §2.2.2
    message.append(f"Arrival-Date: {format_datetime(arrival_date)}")  # RFC 3464 §2.2.5
    blocks = ["\r\n".join(message)]
    for status in statuses:
        recipient = status.recipient
        fields = []
        if recipient.orcpt:  # RFC 3464 §2.3.1, from ORCPT (RFC 3461 §4.2)
            addr_type, _, address = recipient.orcpt.partition(";")
            fields.append(f"Original-Recipient: {addr_type}; {_value(address, is_global=is_global)}")
        addr_type = "rfc822" if recipient.address.isascii() else "utf-8"  # RFC 6533 §3
        fields.append(f"Final-Recipient: {addr_type}; {_value(recipient.address, is_global=is_global)}")  # §2.3.2
        fields.append(f"Action: {status.action.value}")  # RFC 3464 §2.3.3
        fields.append(f"Status: {status.status}")  # RFC 3464 §2.3.4
        if status.remote_mta:
            fields.append(f"Remote-MTA: dns; {status.remote_mta}")  # RFC 3464 §2.3.5
        if status.reply is not None:
            fields.append(f"Diagnostic-Code: smtp; {_diagnostic(status.reply)}")  # RFC 3464 §2.3.6
        if status.last_attempt_at is not None:
            fields.append(f"Last-Attempt-Date: {format_datetime(status.last_attempt_at)}")  # §2.3.7
        if status.will_retry_until is not None and status.action is Action.DELAYED:
            fields.append(f"Will-Retry-Until: {format_datetime(status.will_retry_until)}")  # §2.3.9
        blocks.append("\r\n".join(fields))
    return ("\r\n\r\n".join(blocks) + "\r\n").encode()
