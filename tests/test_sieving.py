"""The vacation reply as it goes on the wire (RFC 3834 §3, RFC 5230 §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from pochta.filters.sieve import Vacation
from pochta.sieving import vacation_message

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _vacation(**changes: object) -> Vacation:
    values: dict[str, object] = {
        "to": "carol@remote.test",
        "subject": "Away",
        "body": "I am away.\n",
        "from_": "alice@example.test",
        "handle": "h",
        "seconds": 86400,
        "in_reply_to": "<m1@remote.test>",
        "references": "<m0@remote.test> <m1@remote.test>",
    }
    values.update(changes)
    return Vacation(**values)  # type: ignore[arg-type]


def test_an_ascii_reply_is_7bit_and_threaded() -> None:
    content = vacation_message(_vacation(), message_id="<v1@mx.example.test>", now=NOW)
    assert content == (
        b"From: alice@example.test\r\nTo: carol@remote.test\r\nSubject: Away\r\n"
        b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <v1@mx.example.test>\r\n"
        b"Auto-Submitted: auto-replied\r\nIn-Reply-To: <m1@remote.test>\r\n"
        b"References: <m0@remote.test> <m1@remote.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nI am away.\r\n"
    )


def test_non_ascii_subject_and_body_are_encoded() -> None:
    body = "Я в отпуске до понедельника.\n" + "long " * 300 + "\n"
    content = vacation_message(_vacation(subject="В отпуске", body=body), message_id="<v@x>", now=NOW)
    assert content.isascii() and all(len(line) <= 78 for line in content.split(b"\r\n"))
    parsed = message_from_bytes(content, policy=policy.default)
    assert parsed["Subject"] == "В отпуске"
    assert parsed.get_content().replace("\r\n", "\n") == body  # type: ignore[attr-defined]


def test_a_mime_reason_is_its_own_entity() -> None:
    entity = "Content-Type: text/html; charset=utf-8\n\n<p>Away</p>\n"
    content = vacation_message(_vacation(mime=True, body=entity), message_id="<v@x>", now=NOW)
    parsed = message_from_bytes(content, policy=policy.default)
    assert parsed.get_content_type() == "text/html" and "<p>Away</p>" in parsed.get_content()  # type: ignore[attr-defined]
    assert parsed["Auto-Submitted"] == "auto-replied"
