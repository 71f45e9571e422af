"""The extensions other than variables and vacation: each command, test and tag, and its edge cases."""

from __future__ import annotations

import datetime as dt

import pytest

from pochta.filters.sieve import Discard, FileInto, Keep, Redirect, Reject, SieveError, parse
from tests.filters.sieve.sample import PLAIN, message, outcome


def _boxes(script: str, text: str | None = None, **changes: object) -> list[str]:
    result = outcome(script, message(text) if text else None, **changes)
    assert result.errors == ()
    return [action.mailbox for action in result.actions if isinstance(action, FileInto)]


# --- imap4flags (RFC 5232) ---------------------------------------------------------------------------


def test_flags_on_implicit_keep() -> None:
    result = outcome('require "imap4flags"; setflag "\\\\Seen"; addflag ["$Work \\\\Flagged", "$work"];')
    assert result.actions == (Keep(flags=("\\Seen", "$Work", "\\Flagged")),)
    assert result.implicit_keep_flags == ("\\Seen", "$Work", "\\Flagged")


def test_flags_imap_cannot_carry_are_dropped_with_a_warning() -> None:
    script = 'require "imap4flags"; addflag ["\\\\Bogus", "(paren", "\\\\Recent", "$ok", "\\\\draft"];'
    assert outcome(script).actions == (Keep(flags=("$ok", "\\draft")),)
    assert len(parse(script).warnings) == 3


def test_removeflag_ignores_case() -> None:
    result = outcome('require "imap4flags"; addflag "\\\\Seen $A"; removeflag "\\\\SEEN";')
    assert result.actions == (Keep(flags=("$A",)),)


def test_flags_argument_overrides_the_internal_variable() -> None:
    script = 'require ["imap4flags", "fileinto"]; addflag "a"; fileinto :flags "b c" "x"; fileinto "y"; keep :flags "";'
    assert outcome(script).actions == (
        FileInto(mailbox="x", flags=("b", "c")),
        FileInto(mailbox="y", flags=("a",)),
        Keep(flags=()),
    )


def test_flags_in_variables_and_hasflag() -> None:
    script = (
        'require ["imap4flags", "variables", "fileinto", "relational", "comparator-i;ascii-numeric"];'
        'setflag "v" "one"; addflag "v" ["two", "ONE"]; removeflag "v" "nothing";'
        'if hasflag "v" "two" { fileinto "has-two"; }'
        'if hasflag :count "eq" :comparator "i;ascii-numeric" "v" "2" { fileinto "count-two"; }'
        'if not hasflag "two" { fileinto "internal-empty"; }'
        'fileinto :flags "${v}" "flagged";'
    )
    result = outcome(script)
    assert [a.mailbox for a in result.actions if isinstance(a, FileInto)] == [
        "has-two",
        "count-two",
        "internal-empty",
        "flagged",
    ]
    assert result.actions[-1] == FileInto(mailbox="flagged", flags=("one", "two"))


# --- relational (RFC 5231) ---------------------------------------------------------------------------


def test_value_and_count() -> None:
    script = (
        'require ["relational", "comparator-i;ascii-numeric", "fileinto"];'
        'if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "urgent"; }'
        'if address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "three"; }'
        'if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "hops"; }'
        'if address :value "gt" :comparator "i;ascii-casemap" "from" "M" { fileinto "n-z"; }'
        'if header :value "ne" "subject" "x" { fileinto "ne"; }'
        'if header :count "eq" :comparator "i;ascii-numeric" "x-none" "0" { fileinto "none"; }'
    )
    assert _boxes(script) == ["urgent", "three", "hops", "ne", "none"]


# --- subaddress (RFC 5233) ---------------------------------------------------------------------------


def test_user_and_detail() -> None:
    script = (
        'require ["envelope", "subaddress", "fileinto"];'
        'if envelope :user "to" "bob" { fileinto "user"; }'
        'if envelope :detail "to" "lists" { fileinto "detail"; }'
        'if envelope :detail :matches "to" "*" { fileinto "has-detail"; }'
        'if address :detail "from" "" { fileinto "from-empty-detail"; }'
    )
    tagged = message(envelope_to="bob+lists@example.com")
    result = outcome(script, tagged)
    assert [a.mailbox for a in result.actions if isinstance(a, FileInto)] == ["user", "detail", "has-detail"]
    # no separator: :detail has nothing to match, not even "" (RFC 5233 §4)
    plain = outcome(script)
    assert [a.mailbox for a in plain.actions if isinstance(a, FileInto)] == ["user"]
    empty = outcome(script, message(PLAIN.replace("alice@example.org>", "alice+@example.org>")))
    assert "from-empty-detail" in [a.mailbox for a in empty.actions if isinstance(a, FileInto)]


# --- copy (RFC 3894) ---------------------------------------------------------------------------------


def test_copy_keeps_the_implicit_keep() -> None:
    result = outcome('require ["copy", "fileinto"]; fileinto :copy "archive"; redirect :copy "x@example.net";')
    assert result.actions == (
        FileInto(mailbox="archive", copy=True),
        Redirect(address="x@example.net", copy=True),
        Keep(),
    )
    assert result.implicit_keep


# --- body (RFC 5173) ---------------------------------------------------------------------------------

MULTIPART = (
    "From: a@example.org\nTo: bob@example.com\nSubject: offer\nMIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="outer"\n\n'
    "preamble\n--outer\n"
    'Content-Type: multipart/alternative; boundary="inner"\n\n'
    "--inner\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Sch=F6nes Angebot\n"
    "--inner\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
    "PHA+R3JlYXQgPGI+ZGVhbDwvYj4gJmFtcDsgbW9yZTwvcD4=\n"
    "--inner--\n"
    "--outer\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    "c2VjcmV0IHBheWxvYWQ=\n"
    "--outer--\n"
)


def test_body_transforms() -> None:
    script = (
        'require ["body", "fileinto"];'
        'if body :contains "schönes" { fileinto "text-default"; }'
        'if body :text :contains "great deal & more" { fileinto "html-as-text"; }'
        'if body :text :contains "<b>" { fileinto "never"; }'
        'if body :raw :contains "Sch=F6nes" { fileinto "raw"; }'
        'if body :raw :contains "Schönes" { fileinto "never-raw"; }'
        'if body :content "text/html" :contains "<b>deal</b>" { fileinto "html"; }'
        'if body :content "application" :contains "secret payload" { fileinto "octets"; }'
        'if body :content "text" :contains "secret" { fileinto "never-text"; }'
        'if body :content "" :contains "payload" { fileinto "any"; }'
        'if body :text :contains "preamble" { fileinto "never-preamble"; }'
    )
    assert _boxes(script, MULTIPART) == ["text-default", "html-as-text", "raw", "html", "octets", "any"]


def test_body_of_a_simple_message() -> None:
    assert _boxes('require ["body", "fileinto"]; if body :contains "noon" { fileinto "b"; }') == ["b"]


# --- date and index (RFC 5260) -----------------------------------------------------------------------


def test_date_parts_in_zones() -> None:
    script = (
        'require ["date", "fileinto", "variables"];'
        'if date :originalzone :matches "date" "iso8601" "*" { fileinto "${1}"; }'
        'if date :zone "+0000" :matches "date" "std11" "*" { fileinto "${1}"; }'
        'if date :matches "date" "time" "*" { fileinto "local ${1}"; }'
        'if date :zone "-0130" :matches "date" "zone" "*" { fileinto "${1}"; }'
        'if date :originalzone :matches "date" "julian" "*" { fileinto "${1}"; }'
        'if date :originalzone :matches "date" "weekday" "*" { fileinto "${1}"; }'
        'if date :originalzone :is "date" "year" "2026" { fileinto "y"; }'
    )
    assert _boxes(script) == [
        "2026-11-27T10:59:40+01:00",
        "Fri, 27 Nov 2026 09:59:40 +0000",
        "local 09:59:40",
        "-0130",
        "61371",
        "5",
        "y",
    ]


def test_date_uses_the_environment_zone_by_default() -> None:
    zone = dt.timezone(dt.timedelta(hours=-5))
    script = 'require ["date", "fileinto", "variables"]; if date :matches "date" "hour" "*" { fileinto "${1}"; }'
    assert _boxes(script, now=dt.datetime(2026, 1, 1, tzinfo=zone)) == ["04"]


def test_missing_or_broken_date_never_matches() -> None:
    script = 'require ["date", "fileinto"]; if date :matches "date" "year" "*" { fileinto "x"; }'
    assert _boxes(script, "From: a@b.c\n\nx\n") == []
    assert _boxes(script, "Date: yesterday\n\nx\n") == []


def test_date_uses_the_first_field_only_without_index() -> None:
    text = "Date: broken\nDate: Tue, 7 Apr 2026 10:00:01 +0000\n\nx\n"
    script = 'require ["date", "index", "fileinto"]; if date :originalzone :is "date" "year" "2026" { fileinto "y"; }'
    assert _boxes(script, text) == []
    indexed = script.replace("date :originalzone", "date :index 2 :originalzone")
    assert _boxes(indexed, text) == ["y"]


def test_received_date_and_index() -> None:
    script = (
        'require ["date", "index", "fileinto", "variables"];'
        'if date :index 1 :originalzone :matches "received" "time" "*" { fileinto "top ${1}"; }'
        'if date :index 1 :last :originalzone :matches "received" "time" "*" { fileinto "bottom ${1}"; }'
        'if header :index 2 :contains "received" "laptop" { fileinto "second"; }'
        'if header :index 3 :contains "received" "" { fileinto "never"; }'
        'if address :index 1 :last :is "cc" "team@lists.example.com" { fileinto "one-field-two-addresses"; }'
    )
    assert _boxes(script) == ["top 09:59:58", "bottom 09:59:50", "second", "one-field-two-addresses"]


def test_currentdate() -> None:
    script = (
        'require ["date", "relational", "fileinto", "variables"];'
        'if currentdate :matches "date" "*" { fileinto "${1}"; }'
        'if currentdate :zone "+0900" :matches "hour" "*" { fileinto "${1}"; }'
        'if currentdate :value "ge" "date" "2026-11-01" { fileinto "after"; }'
    )
    assert _boxes(script) == ["2026-11-27", "19", "after"]


# --- mailbox (RFC 5490) ------------------------------------------------------------------------------


def test_mailboxexists_and_create() -> None:
    existing = {"INBOX", "Work"}
    script = (
        'require ["mailbox", "fileinto"];'
        'if mailboxexists "Work" { fileinto :create "Work/New"; }'
        'if mailboxexists ["Work", "Nope"] { fileinto "never"; }'
    )
    result = outcome(script, mailbox_exists=existing.__contains__)
    assert result.actions == (FileInto(mailbox="Work/New", create=True),)


# --- special-use (RFC 8579) -------------------------------------------------------------------------


def test_fileinto_specialuse_and_specialuse_exists() -> None:
    uses = {("Spam", "\\Junk"), ("Archive", "\\Archive")}

    def special_use_exists(mailbox: str | None, use: str) -> bool:
        return any(use == flag and mailbox in (None, box) for box, flag in uses)

    script = (
        'require ["fileinto", "special-use", "mailbox"];'
        'if specialuse_exists "\\\\Junk" { fileinto :specialuse "\\\\Junk" :create "Junk"; }'
        'if specialuse_exists "Spam" ["\\\\Junk", "\\\\Archive"] { fileinto "never"; }'
        'if specialuse_exists "Archive" "\\\\Archive" { fileinto "archived"; }'
    )
    result = outcome(script, special_use_exists=special_use_exists)
    assert result.actions == (
        FileInto(mailbox="Junk", create=True, special_use="\\Junk"),
        FileInto(mailbox="archived"),
    )


def test_invalid_special_use_flag() -> None:
    with pytest.raises(SieveError, match='invalid special-use flag "Junk"'):
        parse('require ["fileinto", "special-use"]; fileinto :specialuse "Junk" "Junk";')
    result = outcome('require ["fileinto", "special-use", "variables"]; set "u" "x"; fileinto :specialuse "${u}" "J";')
    assert result.actions == (Keep(),) and "invalid special-use flag" in result.errors[0]


# --- regex -------------------------------------------------------------------------------------------


def test_regex_with_comparators() -> None:
    script = (
        'require ["regex", "fileinto"];'
        'if header :regex "subject" "^lunch (on|at) [a-z]+day" { fileinto "casemap"; }'
        'if header :regex :comparator "i;octet" "subject" "^lunch" { fileinto "never"; }'
        'if header :regex "x-priority" "^[[:digit:]]$" { fileinto "posix-class"; }'
    )
    assert _boxes(script) == ["casemap", "posix-class"]


def test_bad_regex_from_a_variable_is_a_run_time_error() -> None:
    result = outcome('require ["regex", "variables"]; set "p" "("; if header :regex "subject" "${p}" { discard; }')
    assert result.actions == (Keep(),) and "invalid regular expression" in result.errors[0]


def test_a_regex_that_backtracks_forever_is_stopped_and_the_message_kept() -> None:
    subject = "a" * 40 + "!"
    result = outcome(
        'require ["regex", "fileinto"]; if header :regex "subject" "^(a|a)*$" { fileinto "never"; }',
        message(f"From: a@example.org\nSubject: {subject}\n\nbody\n"),
    )
    assert result.actions == (Keep(),) and "took too long" in result.errors[0]


# --- editheader (RFC 5293) ---------------------------------------------------------------------------


def test_addheader_and_tests_see_it() -> None:
    script = (
        'require ["editheader", "fileinto"];'
        'addheader "X-First" "one";'
        'addheader :last "X-Last" "Grüße";'
        'if header :is "x-last" "Grüße" { fileinto "seen"; }'
    )
    result = outcome(script)
    assert [a.mailbox for a in result.actions if isinstance(a, FileInto)] == ["seen"]
    assert result.edited_header is not None
    assert result.edited_header.startswith(b"X-First: one\r\nReturn-Path:")
    assert result.edited_header.endswith(b"X-Priority: 1\r\nX-Last: =?utf-8?b?R3LDvMOfZQ==?=\r\n\r\n")


def test_deleteheader_with_index_and_patterns() -> None:
    text = "X-A: 1\nX-A: spam 2\nX-A: 3\nX-B: keep\nSubject: s\n\nbody\n"
    cases = {
        'deleteheader "x-a";': b"X-B: keep\r\nSubject: s\r\n\r\n",
        'deleteheader :index 1 "x-a";': b"X-A: spam 2\r\nX-A: 3\r\nX-B: keep\r\nSubject: s\r\n\r\n",
        'deleteheader :index 1 :last "x-a";': b"X-A: 1\r\nX-A: spam 2\r\nX-B: keep\r\nSubject: s\r\n\r\n",
        'deleteheader :contains "x-a" "spam";': b"X-A: 1\r\nX-A: 3\r\nX-B: keep\r\nSubject: s\r\n\r\n",
        'deleteheader :index 2 :is "x-a" "3";': None,
    }
    for command, block in cases.items():
        result = outcome(f'require ["editheader", "index"]; {command}', message(text))
        assert result.errors == () and result.edited_header == block, command


def test_protected_headers_are_left_alone() -> None:
    result = outcome('require "editheader"; deleteheader "Received"; addheader "Auto-Submitted" "no";')
    assert result.edited_header is None


def test_long_added_header_is_folded() -> None:
    result = outcome('require "editheader"; addheader "X-Long" "' + " ".join(["word"] * 40) + '";')
    assert result.edited_header is not None
    first = result.edited_header.split(b"\r\n")
    assert all(len(line) <= 78 for line in first[:3])
    assert first[1].startswith(b" word")


# --- reject and ereject (RFC 5429) -------------------------------------------------------------------


def test_ereject() -> None:
    result = outcome('require "ereject"; ereject "Not here.";')
    assert result.actions == (Reject(reason="Not here.", is_extended=True),)


def test_reject_with_fileinto_is_an_error() -> None:
    result = outcome('require ["reject", "fileinto"]; fileinto "x"; reject "no";')
    assert result.actions == (Keep(),) and result.errors


def test_second_reject_is_an_error() -> None:
    assert outcome('require "reject"; reject "a"; reject "b";').errors


def test_discard_after_reject_is_fine() -> None:
    assert outcome('require "reject"; reject "a"; discard;').actions == (Reject(reason="a"),)


# --- duplicate (RFC 7352) ----------------------------------------------------------------------------


def test_duplicate_by_message_id_header_or_uniqueid() -> None:
    asked: list[tuple[str, int]] = []

    def is_duplicate(identity: str, seconds: int) -> bool:
        asked.append((identity, seconds))
        return len(asked) > 1

    script = (
        'require ["duplicate", "fileinto"];'
        'if duplicate { fileinto "never"; }'
        'if duplicate :seconds 60 :handle "h" :uniqueid "abc" { fileinto "second"; }'
        'if duplicate :header "X-None" { fileinto "never-without-id"; }'
    )
    result = outcome(script, is_duplicate=is_duplicate)
    assert [a.mailbox for a in result.actions if isinstance(a, FileInto)] == ["second"]
    assert [seconds for _, seconds in asked] == [7 * 86400, 60]
    assert [(mark.id, mark.seconds, mark.is_last) for mark in result.duplicate_ids] == [
        (identity, seconds, False) for identity, seconds in asked
    ]
    assert asked[0][0] != asked[1][0]


def test_duplicate_ids_are_stable() -> None:
    first = outcome('require "duplicate"; if duplicate { }').duplicate_ids
    again = outcome('require "duplicate"; if duplicate { }').duplicate_ids
    handle = outcome('require "duplicate"; if duplicate :handle "x" { }').duplicate_ids
    last = outcome('require "duplicate"; if duplicate :last { }').duplicate_ids
    assert first == again != handle
    assert [(mark.id, mark.is_last) for mark in last] == [(first[0].id, True)]


# --- spamtest and virustest (RFC 5235) ---------------------------------------------------------------


def test_spamtest_and_virustest_from_facts() -> None:
    script = (
        'require ["spamtestplus", "virustest", "relational", "comparator-i;ascii-numeric", "fileinto"];'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "spam"; }'
        'if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { fileinto "spam-percent"; }'
        'if virustest :value "eq" :comparator "i;ascii-numeric" "5" { discard; }'
    )
    facts = {"spamtest": "7", "virustest": "1"}
    assert _boxes(script, facts=facts) == ["spam", "spam-percent"]
    assert _boxes(script, facts={"spamtest": "7", "spamtest.percent": "20"}) == ["spam"]
    result = outcome(script, facts={"virustest": "5"})
    assert result.actions == (Discard(),)


def test_spamtest_untested_is_zero() -> None:
    script = 'require ["spamtest", "fileinto"]; if spamtest :is "0" { fileinto "untested"; }'
    assert _boxes(script) == ["untested"]


# --- environment (RFC 5183) --------------------------------------------------------------------------


def test_environment_items() -> None:
    script = (
        'require ["environment", "fileinto", "variables"];'
        'if environment :matches "domain" "*" { fileinto "${1}"; }'
        'if environment :is "location" "MDA" { fileinto "mda"; }'
        'if environment :is "phase" "during" { fileinto "during"; }'
        'if environment :matches "remote-ip" "*" { fileinto "${1}"; }'
        'if environment :contains "nonsense" "" { fileinto "never"; }'
    )
    assert _boxes(script, remote_ip="192.0.2.1") == ["example.com", "mda", "during", "192.0.2.1"]
    assert _boxes(script) == ["example.com", "mda", "during"]
