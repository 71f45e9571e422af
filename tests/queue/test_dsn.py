"""Delivery status notifications, read back with Python's email package."""

from __future__ import annotations

import email
import email.message
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from pochta.mail.envelope import Envelope, Recipient
from pochta.proto.smtp.replies import Reply
from pochta.queue.dsn import (
    Action,
    RecipientStatus,
    ReturnLimits,
    build_report,
    notices_to_send,
    wants_notice,
)

NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
ARRIVAL = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
ORIGINAL = b"From: alice@client.example\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nthe body\r\n"
BOB = Recipient(address="bob@example.test", notify=("FAILURE",), orcpt="rfc822;Bob+x@example.test")
CAROL = Recipient(address="carol@example.test")
ENVELOPE = Envelope(mail_from="alice@client.example", recipients=(BOB, CAROL), envid="q123+id")
FAILED = RecipientStatus(
    recipient=BOB,
    action=Action.FAILED,
    status="5.1.1",
    reply=Reply(code=550, status="5.1.1", text=("no such", "user")),
    remote_mta="mx.example.test",
    last_attempt_at=NOW,
)
DELAYED = RecipientStatus(
    recipient=CAROL,
    action=Action.DELAYED,
    status="4.2.2",
    reply=Reply(code=452, status="4.2.2", text="mailbox full"),
    remote_mta="mx.example.test",
    last_attempt_at=NOW,
    will_retry_until=ARRIVAL + timedelta(days=5),
)


def _report(
    statuses: list[RecipientStatus], *, envelope: Envelope = ENVELOPE, **kwargs: object
) -> email.message.Message:
    report = build_report(
        envelope=envelope,
        statuses=statuses,
        hostname="pochta.client.example",
        arrival_date=ARRIVAL,
        now=NOW,
        message_id="<dsn.1@pochta.client.example>",
        original=kwargs.pop("original", ORIGINAL),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    assert report.recipient == envelope.mail_from
    assert b"\r\n" in report.content and b"\n" not in report.content.replace(b"\r\n", b"")
    return email.message_from_bytes(report.content)


def test_failure_report_fields() -> None:
    message = _report([FAILED, DELAYED])
    assert message["From"] == "Mail Delivery System <MAILER-DAEMON@pochta.client.example>"
    assert message["To"] == "<alice@client.example>"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"] == "<dsn.1@pochta.client.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    human, status, returned = message.get_payload()  # type: ignore[misc]
    assert human.get_content_type() == "text/plain"
    text = human.get_payload(decode=True).decode()
    assert "<bob@example.test>: 550 5.1.1 no such user (said mx.example.test)" in text
    assert "retried until" in text
    assert status.get_content_type() == "message/delivery-status"
    per_message, bob, carol = status.get_payload()
    assert per_message["Original-Envelope-Id"] == "q123+id"
    assert per_message["Reporting-MTA"] == "dns; pochta.client.example"
    assert parsedate_to_datetime(per_message["Arrival-Date"]) == ARRIVAL
    assert bob["Original-Recipient"] == "rfc822; Bob+x@example.test"
    assert bob["Final-Recipient"] == "rfc822; bob@example.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.example.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert parsedate_to_datetime(bob["Last-Attempt-Date"]) == NOW
    assert bob["Will-Retry-Until"] is None
    assert carol["Original-Recipient"] is None
    assert carol["Action"] == "delayed"
    assert carol["Status"] == "4.2.2"
    assert parsedate_to_datetime(carol["Will-Retry-Until"]) == ARRIVAL + timedelta(days=5)
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "hello"
    assert inner.get_payload() == "the body\r\n"


def test_delay_report_returns_headers_only() -> None:
    message = _report([DELAYED])
    assert message["Subject"] == "Delayed Mail (still being retried)"
    returned = message.get_payload()[2]  # type: ignore[index]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"Subject: hello" in returned.get_payload(decode=True)
    assert b"the body" not in returned.get_payload(decode=True)


def test_success_report() -> None:
    delivered = RecipientStatus(recipient=CAROL, action=Action.DELIVERED, status="2.0.0")
    message = _report([delivered])
    assert message["Subject"] == "Successful Mail Delivery Report"
    assert message.get_payload()[1].get_payload()[1]["Action"] == "delivered"  # type: ignore[index]


@pytest.mark.parametrize(
    ("ret", "size", "header_only", "expected"),
    [
        ("FULL", 0, False, "message/rfc822"),
        (None, 0, False, "message/rfc822"),
        ("HDRS", 0, False, "text/rfc822-headers"),
        (None, 300_000, False, "text/rfc822-headers"),
        ("FULL", 300_000, False, "message/rfc822"),
        ("FULL", 0, True, "text/rfc822-headers"),
    ],
)
def test_what_is_returned(ret: str | None, size: int, header_only: bool, expected: str) -> None:
    envelope = Envelope(mail_from="alice@client.example", recipients=(BOB,), ret=ret)
    original = ORIGINAL + b"x" * size
    message = _report([FAILED], envelope=envelope, original=original, is_header_only=header_only)
    assert message.get_payload()[2].get_content_type() == expected  # type: ignore[index]


def test_too_large_even_for_full() -> None:
    envelope = Envelope(mail_from="alice@client.example", recipients=(BOB,), ret="FULL")
    limits = ReturnLimits(max_full=10)
    message = _report([FAILED], envelope=envelope, limits=limits)
    assert message.get_payload()[2].get_content_type() == "text/rfc822-headers"  # type: ignore[index]


def test_unsafe_envid_is_xtext_encoded() -> None:
    envelope = Envelope(mail_from="alice@client.example", recipients=(BOB,), envid="a\r\nBcc: x")
    message = _report([FAILED], envelope=envelope)
    assert message.get_payload()[1].get_payload()[0]["Original-Envelope-Id"] == "a+0D+0ABcc:+20x"  # type: ignore[index]


def test_international_report() -> None:
    recipient = Recipient(address="жена@пример.test")
    envelope = Envelope(mail_from="алиса@client.example", recipients=(recipient,), is_smtputf8=True)
    status = RecipientStatus(recipient=recipient, action=Action.FAILED, status="5.1.1")
    report = build_report(
        envelope=envelope,
        statuses=[status],
        hostname="h.example",
        arrival_date=ARRIVAL,
        now=NOW,
        message_id="<x@h.example>",
        original=ORIGINAL,
    )
    assert report.is_smtputf8 and report.is_8bit
    assert b"Content-Type: message/global-delivery-status" in report.content
    assert "Final-Recipient: utf-8; жена@пример.test".encode() in report.content
    assert b"Content-Type: message/global\r\n" in report.content


def test_boundary_never_occurs_in_the_parts() -> None:
    first = build_report(
        envelope=ENVELOPE, statuses=[FAILED], hostname="h", arrival_date=ARRIVAL, now=NOW, message_id="<m@h>",
        original=ORIGINAL,
    )  # fmt: skip
    boundary = email.message_from_bytes(first.content).get_boundary()
    assert boundary is not None
    tricky = ORIGINAL + f"--{boundary}\r\n".encode()
    message = _report([FAILED], original=tricky)
    assert message.get_boundary() != boundary
    assert len(message.get_payload()) == 3  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("notify", "action", "wanted"),
    [
        ((), Action.FAILED, True),
        ((), Action.DELAYED, True),
        ((), Action.DELIVERED, False),
        (("NEVER",), Action.FAILED, False),
        (("SUCCESS",), Action.DELIVERED, True),
        (("SUCCESS",), Action.RELAYED, True),
        (("SUCCESS",), Action.FAILED, False),
        (("FAILURE",), Action.DELAYED, False),
        (("delay",), Action.DELAYED, True),
    ],
)
def test_notify(notify: tuple[str, ...], action: Action, wanted: bool) -> None:
    assert wants_notice(Recipient(address="b@example.test", notify=notify), action) is wanted


def test_never_to_the_null_sender() -> None:
    bounce_of_bounce = Envelope(mail_from="", recipients=(BOB,))
    assert notices_to_send(bounce_of_bounce, [FAILED]) == ()
    with pytest.raises(ValueError):
        _report([FAILED], envelope=bounce_of_bounce)
    assert notices_to_send(ENVELOPE, [FAILED, DELAYED]) == (FAILED, DELAYED)
    only_failure = RecipientStatus(recipient=BOB, action=Action.DELAYED, status="4.0.0")
    assert notices_to_send(ENVELOPE, [only_failure]) == ()


def test_bad_status_is_our_mistake() -> None:
    with pytest.raises(ValueError):
        RecipientStatus(recipient=BOB, action=Action.FAILED, status="550")


def test_reads_like_real_reports() -> None:
    """The fields we write are the ones real MTAs write (ruby-mail's corpus of reports)."""
    folder = Path("/work/shared/data/mime/ruby-mail/spec/fixtures/emails/multipart_report_emails")
    if not folder.is_dir():
        pytest.skip("ruby-mail corpus not present")
    real = email.message_from_bytes((folder / "report_422.eml").read_bytes())
    ours = _report([DELAYED])
    real_blocks = real.get_payload()[1].get_payload()  # type: ignore[index]
    our_blocks = ours.get_payload()[1].get_payload()  # type: ignore[index]
    assert "Reporting-MTA" in real_blocks[0] and "Reporting-MTA" in our_blocks[0]
    assert {"Final-Recipient", "Action", "Status"} <= set(real_blocks[1].keys())
    assert {"Final-Recipient", "Action", "Status"} <= set(our_blocks[1].keys())
