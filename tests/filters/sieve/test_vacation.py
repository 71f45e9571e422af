"""RFC 5230 vacation and RFC 6131 :seconds: the reply, its defaults, and when no reply goes out."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from pochta.filters.sieve import Keep, SieveError, Vacation, compose_reply, parse
from tests.filters.sieve.sample import PLAIN, message, outcome


def _vacation(script: str, text: str = PLAIN, **changes: object) -> Vacation | None:
    envelope_from = str(changes.pop("envelope_from", "alice@example.org"))
    envelope_to = str(changes.pop("envelope_to", "bob@example.com"))
    result = outcome(script, message(text, envelope_from=envelope_from, envelope_to=envelope_to), **changes)
    assert result.errors == ()
    assert Keep() in result.actions  # vacation never cancels the implicit keep
    replies = [action for action in result.actions if isinstance(action, Vacation)]
    return replies[0] if replies else None


def test_reply_with_defaults() -> None:
    reply = _vacation('require "vacation"; vacation "I am away.";')
    assert reply is not None
    assert reply.to == "alice@example.org"
    assert reply.from_ == "bob@example.com"
    assert reply.subject == "Auto: Lunch on Friday?"
    assert reply.body == "I am away."
    assert reply.seconds == 7 * 86400
    assert reply.in_reply_to == "<lunch-1@example.org>"
    assert reply.references == "<lunch-1@example.org>"
    assert len(reply.handle) == 32


def test_arguments() -> None:
    reply = _vacation(
        'require "vacation"; vacation :days 3 :subject "Away" :from "bob@example.com" :handle "h1" :mime '
        ':addresses ["robert@example.com"] "Content-Type: text/plain\r\n\r\nAway.";'
    )
    assert reply is not None
    assert (reply.subject, reply.handle, reply.seconds, reply.mime) == ("Away", "h1", 3 * 86400, True)
    assert reply.addresses == ("robert@example.com",)


def test_days_are_at_least_one_and_seconds_may_be_zero() -> None:
    reply = _vacation('require "vacation"; vacation :days 0 "x";')
    assert reply is not None and reply.seconds == 86400
    reply = _vacation('require "vacation-seconds"; vacation :seconds 0 "x";')
    assert reply is not None and reply.seconds == 0


def test_same_arguments_same_default_handle() -> None:
    first = _vacation('require "vacation"; vacation :subject "s" "x";')
    second = _vacation('require "vacation"; vacation :subject "s" :days 2 "x";')
    third = _vacation('require "vacation"; vacation :subject "t" "x";')
    assert first and second and third
    assert first.handle == second.handle != third.handle


def test_no_subject_gives_automated_reply() -> None:
    reply = _vacation('require "vacation"; vacation "x";', "From: alice@example.org\nTo: bob@example.com\n\nhi\n")
    assert reply is not None and reply.subject == "Automated reply"


def test_recorded_reply_is_not_repeated() -> None:
    seen: list[tuple[str, str, int]] = []

    def vacation_seen(sender: str, handle: str, seconds: int) -> bool:
        seen.append((sender, handle, seconds))
        return True

    assert _vacation('require "vacation"; vacation :handle "h" "x";', vacation_seen=vacation_seen) is None
    assert seen == [("alice@example.org", "h", 7 * 86400)]


_NO_REPLY = {
    "auto-submitted": PLAIN.replace("X-Priority: 1\n", "Auto-Submitted: auto-replied\n"),
    "list-id": PLAIN.replace("X-Priority: 1\n", "List-Id: <team.lists.example.com>\n"),
    "list-unsubscribe": PLAIN.replace("X-Priority: 1\n", "List-Unsubscribe: <mailto:u@example.com>\n"),
    "precedence-bulk": PLAIN.replace("X-Priority: 1\n", "Precedence: bulk\n"),
    "not-addressed-to-me": PLAIN.replace("To: Bob <bob@example.com>\n", "To: someone@example.com\n"),
}


@pytest.mark.parametrize("case", sorted(_NO_REPLY))
def test_no_reply_to(case: str) -> None:
    assert _vacation('require "vacation"; vacation "x";', _NO_REPLY[case]) is None


def test_auto_submitted_no_gets_a_reply() -> None:
    text = PLAIN.replace("X-Priority: 1\n", "Auto-Submitted: no\n")
    assert _vacation('require "vacation"; vacation "x";', text) is not None


@pytest.mark.parametrize(
    "sender", ["", "MAILER-DAEMON@example.org", "owner-list@example.org", "list-request@example.org", "bob@example.com"]
)
def test_no_reply_to_robots_null_sender_or_self(sender: str) -> None:
    assert _vacation('require "vacation"; vacation "x";', envelope_from=sender) is None


def test_addresses_alias_and_subaddress_count_as_mine() -> None:
    text = PLAIN.replace("To: Bob <bob@example.com>\n", "To: Robert <robert@example.com>\n")
    script = 'require "vacation"; vacation "x";'
    assert _vacation(script, text) is None
    assert _vacation('require "vacation"; vacation :addresses "robert@example.com" "x";', text) is not None
    assert _vacation(script, text, my_addresses=frozenset({"Robert@Example.com"})) is not None
    tagged = PLAIN.replace("To: Bob <bob@example.com>\n", "To: bob+travel@example.com\n")
    assert _vacation(script, tagged, envelope_to="bob+travel@example.com") is not None


def test_only_one_vacation() -> None:
    result = outcome('require "vacation"; vacation "a"; vacation "b";')
    assert result.actions == (Keep(),) and "only one vacation" in result.errors[0]


def test_reject_and_vacation_conflict() -> None:
    result = outcome('require ["vacation", "reject"]; vacation "a"; reject "b";')
    assert result.actions == (Keep(),) and result.errors


def test_from_must_be_an_address() -> None:
    reply = _vacation('require "vacation"; vacation :from "Bob <bob@example.com>" "x";')
    assert reply is not None and reply.from_ == "Bob <bob@example.com>"
    with pytest.raises(SieveError, match="vacation :from is not an address"):
        parse('require "vacation"; vacation :from "nobody" "x";')
    result = outcome('require ["vacation", "variables"]; set "f" "nobody"; vacation :from "${f}" "x";')
    assert result.actions == (Keep(),) and "vacation :from is not an address" in result.errors[0]


def test_compose_reply() -> None:
    reply = _vacation(
        'require "vacation"; vacation :from "Jürgen <bob@example.com>" :subject "Weg" "Bin weg.\nBis bald.";'
    )
    assert reply is not None
    raw = compose_reply(reply, date=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC), message_id="r1@example.com")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"] == "alice@example.org"
    assert str(parsed["From"]) == "Jürgen <bob@example.com>"
    assert parsed["Subject"] == "Weg"
    assert parsed["Auto-Submitted"] == "auto-replied (vacation)"
    assert parsed["In-Reply-To"] == "<lunch-1@example.org>"
    assert parsed["References"] == "<lunch-1@example.org>"
    assert parsed["Message-ID"] == "<r1@example.com>"
    assert parsed["Date"] == "Fri, 27 Nov 2026 10:00:00 +0000"
    assert raw.endswith(b"Content-Transfer-Encoding: 8bit\r\n\r\nBin weg.\r\nBis bald.\r\n")


def test_compose_reply_mime_and_encoded_subject() -> None:
    script = 'require "vacation"; vacation :mime :subject "Grüße" "Content-Type: text/html\r\n\r\n<p>away</p>";'
    reply = _vacation(script)
    assert reply is not None
    raw = compose_reply(reply, date=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC), message_id="r2@example.com")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    assert parsed.get_content_type() == "text/html"
    assert parsed.get_content().strip() == "<p>away</p>"
