"""Whatever the script or the message, run() gives a Result: never an exception, never lost mail."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pochta.filters.sieve import SUPPORTED_EXTENSIONS, Keep, MessageView, SieveError, parse, run
from tests.filters.sieve.sample import PLAIN, environment, message

REQUIRE_ALL = "require [" + ", ".join(f'"{name}"' for name in sorted(SUPPORTED_EXTENSIONS)) + "];\n"

EVERYTHING = (
    REQUIRE_ALL
    + r"""
if header :matches "subject" "*" { set "s" "${1}"; }
if address :all :matches ["from", "to", "cc"] "*@*" { set "d" "${2}"; }
if address :detail :regex "to" "^(.*)$" { set "t" "${1}"; }
if envelope :user :contains "to" "" { addflag "$env"; }
if body :text :contains "a" { addflag "$text"; }
if body :content "text" :matches "*" { addflag "$content"; }
if body :raw :contains "b" { addflag "$raw"; }
if date :value "ge" :zone "+1400" "date" "iso8601" "1" { addflag "$date"; }
if date :index 1 :last :originalzone :matches "received" "std11" "*" { set "r" "${0}"; }
if header :count "ge" :comparator "i;ascii-numeric" "received" "1" { addflag "$received"; }
if exists "x-none" { discard; }
addheader "X-Test" "${s}${d}";
deleteheader :index 1 :matches "received" "*";
if duplicate :header "message-id" { addflag "$dup"; }
if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { addflag "$spam"; }
if environment :is "location" "MDA" { addflag "$mda"; }
if size :over 1M { fileinto :create "big"; }
fileinto :copy :flags "${t}" "INBOX.${d}";
vacation :days 1 "away";
"""
)
_SCRIPT = parse(EVERYTHING)


def test_the_everything_script_runs() -> None:
    result = run(_SCRIPT, message(), environment())
    assert result.errors == ()
    assert any(isinstance(action, Keep) for action in result.actions)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_message_bytes(content: bytes) -> None:
    mail = MessageView(content=content, envelope_from="a@example.org", envelope_to="b+c@example.com", size=len(content))
    result = run(_SCRIPT, mail, environment())
    assert result.actions


_HEADER_LINES = st.lists(
    st.sampled_from(
        [
            "From: =?utf-8?b?w7w=?= <x@y>",
            "From: a, b@, <c@d> (e)",
            "To: g: h@i, j@k;",
            "To: bob+tag@example.com",
            "Subject: =?iso-8859-1?Q?caf\xe9?=",
            "Date: Mon, 1 Jan 0001 00:00:00 -1200",
            "Date: Fri, 31 Dec 9999 23:59:59 +1400",
            "Date: garbage",
            "Received: x; Fri, 27 Nov 2026 10:00:00 +0000",
            "Received: nothing",
            "Content-Type: multipart/mixed; boundary=b",
            "Content-Type: text/html; charset=nonsense",
            "Content-Transfer-Encoding: base64",
            "Message-ID: <m@x>",
            " continuation",
            "not a header",
        ]
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_HEADER_LINES, st.sampled_from(["", "a\n", "--b\nContent-Type: text/plain\n\nb\n--b--\n", "!!!\n==\n"]))
def test_odd_headers(lines: list[str], body: str) -> None:
    result = run(_SCRIPT, message("\n".join(lines) + "\n\n" + body), environment())
    assert result.actions


_SOUP = st.sampled_from(
    [
        "if", "elsif", "else", "keep;", "discard;", "stop;", "return;", 'fileinto "x";', 'redirect "a@b.c";',
        'header :matches "subject" "*"', 'address :regex "from" "(.*)"', "true", "false", "not", "allof", "anyof",
        '(true, false)', "{", "}", 'set "a" "${1}${a}${a}";', 'addflag "${a}";', 'vacation "v";', 'reject "r";',
        'include :optional "x";', 'addheader "X" "${a}";', 'deleteheader "subject";', 'global "a";',
        'string :count "gt" "${a}" "1"', 'date :zone "+0100" "date" "julian" "5"', ";",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_SOUP, max_size=30).map(" ".join))
def test_scripts_that_parse_also_run(soup: str) -> None:
    try:
        script = parse(REQUIRE_ALL + soup)
    except SieveError:
        return
    result = run(script, message(PLAIN), environment(include=lambda name, is_global: soup))
    assert result.actions
    if result.errors:
        assert result.actions == (Keep(),)
