"""Rules over the message and the earlier checks' facts; the RFC 5235 scale; allow and block lists."""

from __future__ import annotations

from pochta.filters.spam import rules
from pochta.filters.spam.check import assess, list_hit, senders, status_header
from pochta.filters.spam.models import Result
from pochta.filters.spam.tokens import features
from pochta.store.api import GLOBAL_MODEL, SpamListEntry

from .samples import message


def _names(data: bytes, facts: dict[str, str] | None = None) -> set[str]:
    return {hit.name for hit in rules.message_hits(features(data), facts or {})}


def test_a_plain_message_fires_nothing() -> None:
    assert _names(message("just a note")) == set()


def test_gtube_is_spam_whatever_else() -> None:
    hits = rules.message_hits(features(message(f"test {rules.GTUBE} end")), {})
    assert [hit.name for hit in hits] == ["GTUBE"] and hits[0].points >= 1000


def test_missing_and_broken_headers() -> None:
    assert _names(b"Subject: hi\r\n\r\nbody\r\n") == {"MISSING_DATE", "MISSING_MID", "MISSING_FROM"}
    broken = b"From: nobody\r\nDate: yesterday\r\nMessage-ID: 12345\r\n\r\nbody\r\n"
    assert _names(broken) == {"INVALID_DATE", "INVALID_MSGID", "FROM_NO_ADDRESS", "MISSING_SUBJECT"}


def test_authentication_results_from_the_earlier_check() -> None:
    facts = {"spf": "fail", "dkim": "pass", "dmarc": "fail", "dmarc.policy": "reject"}
    assert _names(message("hi"), facts) == {"SPF_FAIL", "DMARC_FAIL", "DMARC_REJECT"}
    assert _names(message("hi"), {"spf": "softfail", "dkim": "fail"}) == {"SPF_SOFTFAIL", "DKIM_FAIL"}


def test_html_only_with_a_lying_link() -> None:
    data = (
        b"From: a@b.example\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@b.example>\r\nSubject: x\r\n"
        b"Content-Type: text/html\r\n\r\n<a href='http://198.51.100.7/x'>www.paypal.example</a>\r\n"
    )
    assert _names(data) == {"HTML_ONLY", "LINK_TEXT_MISMATCH"}


def test_spamtest_scale() -> None:
    def scale(score: float) -> int:
        return rules.spamtest(score, junk_threshold=5.0, reject_threshold=15.0)

    assert [scale(s) for s in (-20, 0, 1.3, 4.99, 5, 10, 14.9, 15, 1000)] == [1, 1, 2, 4, 5, 7, 9, 10, 10]


def test_classifier_points_follow_the_log_odds_within_ten() -> None:
    points = [hit.points for z in (-1000, -20, -6, 0, 6, 20, 1000) if (hit := rules.bayes_hit(z, is_trained=True))]
    assert points == sorted(points) and points[0] == -10 and points[-1] == 10 and points[3] == 0
    for wanted in (-9.5, -5.0, 0.0, 5.0, 9.99):
        hit = rules.bayes_hit(rules.logit_of_points(wanted), is_trained=True)
        assert hit is not None and hit.points == wanted
    assert rules.bayes_hit(3.0, is_trained=False) is None


def test_score_and_status_header() -> None:
    result = assess(
        Result(logit=rules.logit_of_points(5.0), probability=0.9), [rules.Hit(name="MISSING_DATE", points=1.0)]
    )
    assert result.score == 6.0
    assert status_header(result, junk_threshold=5.0) == "Yes, score=6.0 required=5.0 tests=BAYES_99,MISSING_DATE"
    untrained = assess(Result(logit=0.0, probability=0.5, is_trained=False), [])
    assert status_header(untrained, junk_threshold=5.0) == "No, score=0.0 required=5.0 tests=none"


def test_lists_user_entries_win_and_allow_beats_block() -> None:
    found = features(message("hi", sender="Eve <eve@Spam.example>"))
    addresses = senders(found, "bounce@mailer.example")
    assert addresses == {"eve@spam.example", "bounce@mailer.example"}
    entries = [
        SpamListEntry(account_id=GLOBAL_MODEL, pattern="@spam.example", is_block=True),
        SpamListEntry(account_id=7, pattern="eve@spam.example", is_block=False),
    ]
    hit = list_hit(entries, addresses)
    assert hit is not None and hit.name == "USER_ALLOWLIST" and hit.points < 0
    hit = list_hit(entries[:1], addresses)
    assert hit is not None and hit.name == "GLOBAL_BLOCKLIST" and hit.points > 0
    sub = list_hit([SpamListEntry(account_id=7, pattern="@mailer.example", is_block=True)], {"x@eu.mailer.example"})
    assert sub is not None and sub.name == "USER_BLOCKLIST"
    assert list_hit(entries, {"eve@notspam.example"}) is None
