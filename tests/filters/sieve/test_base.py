"""RFC 5228 base: control, the core tests and actions, comparators, match types, the implicit keep."""

from __future__ import annotations

from pochta.filters.sieve import Discard, FileInto, Keep, Redirect, Reject
from tests.filters.sieve.sample import message, outcome


def test_no_script_action_means_implicit_keep() -> None:
    result = outcome("")
    assert result.actions == (Keep(),)
    assert result.implicit_keep and result.errors == ()


def test_keep_is_explicit() -> None:
    result = outcome("keep;")
    assert result.actions == (Keep(),)
    assert not result.implicit_keep


def test_discard_cancels_the_implicit_keep() -> None:
    result = outcome("discard;")
    assert result.actions == (Discard(),)
    assert not result.implicit_keep


def test_discard_then_keep_delivers() -> None:
    assert outcome("discard; keep;").actions == (Keep(),)


def test_redirect_cancels_implicit_keep_and_normalises_the_address() -> None:
    result = outcome('redirect "Carol@EXAMPLE.net";')
    assert result.actions == (Redirect(address="Carol@example.net"),)


def test_redirect_twice_to_one_address_happens_once() -> None:
    # RFC 5228 §2.10.3
    assert outcome('redirect "a@example.net"; redirect "a@example.net";').actions == (
        Redirect(address="a@example.net"),
    )


def test_stop_ends_the_script() -> None:
    assert outcome("stop; discard;").actions == (Keep(),)


def test_if_elsif_else_takes_the_first_true_branch() -> None:
    script = (
        'require "fileinto";'
        'if false { fileinto "a"; } elsif true { fileinto "b"; } elsif true { fileinto "c"; } else { fileinto "d"; }'
        'if false { fileinto "e"; } else { fileinto "f"; }'
    )
    assert [a.mailbox for a in outcome(script).actions if isinstance(a, FileInto)] == ["b", "f"]


def test_allof_anyof_not() -> None:
    script = (
        'require "fileinto";'
        'if allof (true, not false, anyof (false, true)) { fileinto "yes"; }'
        'if anyof (false, allof (true, false)) { fileinto "no"; }'
    )
    assert outcome(script).actions == (FileInto(mailbox="yes"),)


def test_header_is_casemap_by_default_and_octet_on_request() -> None:
    assert outcome('if header :is "subject" "LUNCH ON FRIDAY?" { discard; }').actions == (Discard(),)
    assert outcome('if header :comparator "i;octet" :is "subject" "LUNCH ON FRIDAY?" { discard; }').implicit_keep


def test_header_contains_and_matches() -> None:
    assert not outcome('if header :contains "Subject" "friday" { discard; }').implicit_keep
    assert not outcome('if header :matches "Subject" "Lunch*?" { discard; }').implicit_keep
    assert outcome('if header :matches "Subject" "Lunch" { discard; }').implicit_keep
    assert not outcome('if header :matches "X-Priority" "?" { discard; }').implicit_keep


def test_matches_escapes() -> None:
    mail = message("Subject: a*b?c\\d\n\nbody\n")
    assert not outcome(r'if header :matches "subject" "a\\*b\\?c\\\\d" { discard; }', mail).implicit_keep
    assert outcome(r'if header :matches "subject" "a\\*b\\?c\\\\e" { discard; }', mail).implicit_keep


def test_header_missing_never_matches() -> None:
    assert outcome('if header :contains "X-None" "" { discard; }').implicit_keep
    assert not outcome('if not header :contains "X-None" "" { discard; }').implicit_keep


def test_header_values_are_decoded_and_unfolded() -> None:
    mail = message("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n  aus\n\tBerlin\n\nx\n")
    assert not outcome('if header :is "subject" "Grüße  aus\tBerlin" { discard; }', mail).implicit_keep


def test_address_parts() -> None:
    script = (
        'require "fileinto";'
        'if address :all :is "from" "alice@example.org" { fileinto "all"; }'
        'if address :localpart :is "from" "ALICE" { fileinto "local"; }'
        'if address :domain :is ["to", "cc"] "lists.example.com" { fileinto "domain"; }'
        'if address :is "from" "Alice Example" { fileinto "never"; }'
    )
    assert [a.mailbox for a in outcome(script).actions if isinstance(a, FileInto)] == ["all", "local", "domain"]


def test_address_groups_and_unparsable_values() -> None:
    mail = message("To: friends: a@x.example, b@y.example;\nFrom: not an address\n\nx\n")
    script = (
        'require "fileinto";'
        'if address :domain :is "to" "y.example" { fileinto "group"; }'
        'if address :all :is "from" "not an address" { fileinto "raw"; }'
        'if address :localpart :is "from" "not an address" { fileinto "never"; }'
    )
    assert [a.mailbox for a in outcome(script, mail).actions if isinstance(a, FileInto)] == ["group", "raw"]


def test_exists_needs_every_header() -> None:
    assert not outcome('if exists ["from", "x-priority"] { discard; }').implicit_keep
    assert outcome('if exists ["from", "x-none"] { discard; }').implicit_keep


def test_size() -> None:
    size = message().size
    assert not outcome(f"if size :over {size - 1} {{ discard; }}").implicit_keep
    assert outcome(f"if size :over {size} {{ discard; }}").implicit_keep
    assert not outcome(f"if size :under {size + 1} {{ discard; }}").implicit_keep
    assert outcome(f"if size :under {size} {{ discard; }}").implicit_keep


def test_envelope() -> None:
    mail = message(envelope_from="", envelope_to="bob+box@example.com")
    script = (
        'require ["envelope", "fileinto"];'
        'if envelope :all :is "from" "" { fileinto "null-sender"; }'
        'if envelope :domain :is "to" "EXAMPLE.COM" { fileinto "to-domain"; }'
        'if envelope :localpart :is "to" "bob+box" { fileinto "to-local"; }'
    )
    assert [a.mailbox for a in outcome(script, mail).actions if isinstance(a, FileInto)] == [
        "null-sender",
        "to-domain",
        "to-local",
    ]


def test_ascii_numeric_comparator() -> None:
    script = (
        'require ["comparator-i;ascii-numeric", "fileinto"];'
        'if header :is :comparator "i;ascii-numeric" "x-priority" "001" { fileinto "one"; }'
        'if header :is :comparator "i;ascii-numeric" "subject" "x" { fileinto "both-infinite"; }'
    )
    assert [a.mailbox for a in outcome(script).actions if isinstance(a, FileInto)] == ["one", "both-infinite"]


def test_fileinto_and_keep_of_inbox_happen_once() -> None:
    result = outcome('require "fileinto"; fileinto "INBOX"; keep; fileinto "a"; fileinto "a";')
    assert result.actions == (FileInto(mailbox="INBOX"), FileInto(mailbox="a"))


def test_reject_cancels_keep() -> None:
    result = outcome('require "reject"; reject "no thanks";')
    assert result.actions == (Reject(reason="no thanks"),)
    assert not result.implicit_keep


def test_run_time_error_keeps_the_message_and_says_where() -> None:
    result = outcome('require "variables"; set "a" "not an address"; discard;\nredirect "${a}";')
    assert result.actions == (Keep(),)
    assert result.implicit_keep
    assert result.errors[0].startswith("line 2:1: redirect to an invalid address")


def test_too_many_actions_is_an_error() -> None:
    script = 'require "fileinto";' + "".join(f'fileinto "box{n}";' for n in range(10))
    result = outcome(script, max_actions=5)
    assert result.actions == (Keep(),) and "more than 5 actions" in result.errors[0]


def test_too_many_redirects_is_an_error() -> None:
    script = "".join(f'redirect "r{n}@example.net";' for n in range(4))
    assert "more than 3 redirects" in outcome(script, max_redirects=3).errors[0]


def test_fileinto_invalid_mailbox_is_an_error() -> None:
    result = outcome('require ["fileinto", "variables"]; fileinto "${nothing}";')
    assert result.actions == (Keep(),) and "invalid mailbox name" in result.errors[0]


def test_message_without_header_block() -> None:
    mail = message("just a line without colon\n")
    assert outcome('if exists "subject" { discard; }', mail).implicit_keep
    assert outcome('if header :contains "subject" "" { discard; }', mail).implicit_keep


def test_redirect_takes_a_name_addr() -> None:
    assert outcome('redirect "Carol <carol@example.net>";').actions == (Redirect(address="carol@example.net"),)
