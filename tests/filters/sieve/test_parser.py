"""The Sieve parser: RFC 5228 §8 grammar, strings, require, argument checks, line:column errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.filters.sieve import SUPPORTED_EXTENSIONS, Script, SieveError, parse


def test_commands_tests_and_blocks_become_nodes() -> None:
    script = parse('require "fileinto";\nif header :contains "Subject" "x" { fileinto "a"; } else { keep; }')
    assert [node.name for node in script.commands] == ["require", "if", "else"]
    test = script.commands[1].tests[0]
    assert (test.name, dict(test.tags), test.args) == ("header", {"contains": True}, (("Subject",), ("x",)))
    assert (test.line, test.column) == (2, 4)
    assert script.commands[1].block[0].args == ("a",)
    assert script.extensions == frozenset({"fileinto"})


def test_identifiers_and_tags_are_case_insensitive() -> None:
    script = parse('IF Header :CONTAINS "subject" "x" { DISCARD; }')
    assert script.commands[0].tests[0].tags == {"contains": True}
    assert script.commands[0].block[0].name == "discard"


def test_quoted_string_escapes() -> None:
    # RFC 5228 §2.4.2: \" and \\ are escapes; any other backslash is dropped
    script = parse(r'require "variables"; set "a" "say \"hi\" \\ \a";')
    assert script.commands[1].args[1] == 'say "hi" \\ a'


def test_quoted_strings_span_lines() -> None:
    script = parse('require "variables"; set "a" "one\r\ntwo";')
    assert script.commands[1].args[1] == "one\r\ntwo"


def test_multiline_string_with_dot_stuffing_and_comment() -> None:
    source = 'require "variables";\nset "a" text: # comment here\r\nline one\r\n..starts with a dot\r\n.\r\n;'
    assert parse(source).commands[1].args[1] == "line one\r\n.starts with a dot\r\n"


def test_comments_anywhere() -> None:
    source = "# hash comment\n/* bracket\ncomment */ keep /* inline */ ; # end"
    assert [node.name for node in parse(source).commands] == ["keep"]


def test_numbers_with_quantifiers() -> None:
    sizes = [
        parse(f"if size :over {text} {{ discard; }}").commands[0].tests[0].args[0] for text in ["1", "1K", "2m", "3G"]
    ]
    assert sizes == [1, 1024, 2 * 2**20, 3 * 2**30]


def test_string_list_and_single_string_are_both_string_lists() -> None:
    script = parse('if exists ["a", "b"] { keep; } if exists "c" { keep; }')
    assert script.commands[0].tests[0].args == (("a", "b"),)
    assert script.commands[1].tests[0].args == (("c",),)


def test_empty_script_and_empty_blocks() -> None:
    assert parse("").commands == ()
    assert parse("if true { }").commands[0].block == ()


def test_nested_tests() -> None:
    script = parse('if allof (not exists "x", anyof (true, false), size :under 1) { stop; }')
    allof = script.commands[0].tests[0]
    assert [test.name for test in allof.tests] == ["not", "anyof", "size"]


def test_implicit_comparators_may_be_required() -> None:
    parse('require ["comparator-i;octet", "comparator-i;ascii-casemap"]; keep;')


def test_extensions_can_be_narrowed() -> None:
    with pytest.raises(SieveError, match='unsupported extension "vacation"'):
        parse('require "vacation";', extensions=frozenset({"fileinto"}))
    assert isinstance(parse('require "fileinto";', extensions=frozenset({"fileinto"})), Script)


def test_every_supported_extension_can_be_required() -> None:
    parse(f"require [{', '.join(f'{e!r}'.replace(chr(39), chr(34)) for e in sorted(SUPPORTED_EXTENSIONS))}];")


def test_encoded_character_rfc_5228_examples() -> None:
    # RFC 5228 §2.4.2.4
    cases = {
        "$${hex:24 24}": "$$$",
        "$${hex:40}": "$@",
        "${hex: 40 }": "@",
        "${HEX: 40}": "@",
        "${hex:40": "${hex:40",
        "${hex:400}": "${hex:400}",
        "${hex:4${hex:30}}": "${hex:40}",
        "${unicode:40}": "@",
        "${ unicode:40}": "${ unicode:40}",
        "${UNICODE:40}": "@",
        "${UnICoDE:0000040}": "@",
        "${Unicode:40}": "@",
        "${Unicode:Cool}": "${Unicode:Cool}",
        "${hex:e2 98 ba}": "☺",
    }
    for written, meant in cases.items():
        script = parse(f'require ["encoded-character", "variables"]; set "a" "{written}";')
        assert script.commands[1].args[1] == meant, written
    for bad in ("${unicode:200000}", "${Unicode:DF01}"):
        with pytest.raises(SieveError, match="invalid unicode"):
            parse(f'require "encoded-character"; redirect "{bad}@example.com";')


def test_encoded_character_is_literal_without_require() -> None:
    script = parse('require "variables"; set "a" "${hex:40}";')
    assert script.commands[1].args[1] == "${hex:40}"


ERRORS = [
    ("keep", 1, 5, "expected ';'"),
    ("if true { keep;\n", 2, 1, "expected '}'"),
    ("if true keep;", 1, 9, "expected '{'"),
    ('fileinto "x";', 1, 1, "command 'fileinto' needs require \"fileinto\""),
    ('require "fileinto";\nif header :regex "a" "b" { }', 2, 11, ':regex needs require "regex"'),
    ('require "nonsense";', 1, 1, 'unsupported extension "nonsense"'),
    ('keep;\nrequire "fileinto";', 2, 1, "require must come before any other command"),
    ('if true { require "fileinto"; }', 1, 11, "require must come before any other command"),
    ("else { keep; }", 1, 1, "else without a preceding if"),
    ("keep; elsif true { keep; }", 1, 7, "elsif without a preceding if"),
    ("frobnicate;", 1, 1, "unknown command 'frobnicate'"),
    ("if frobnicate { }", 1, 4, "unknown test 'frobnicate'"),
    ("if keep { }", 1, 4, "unknown test 'keep'"),
    ('if header "a" { }', 1, 11, "'header' takes string list, string list"),
    ("if size 100 { }", 1, 4, "'size' needs :over or :under"),
    ("if size :over :under 1 { }", 1, 15, ":under cannot be combined with :over"),
    ('if header :is :is "a" "b" { }', 1, 15, ":is given twice"),
    ('if header :is :contains "a" "b" { }', 1, 15, ":contains cannot be combined with :is"),
    ('if header :frob "a" "b" { }', 1, 11, "'header' has no tagged argument :frob"),
    ('if header "a" :is "b" { }', 1, 15, "tagged argument :is must come before the others"),
    ('if header :comparator "i;nope" "a" "b" { }', 1, 4, 'unknown comparator "i;nope"'),
    ('if header :comparator "i;ascii-numeric" "a" "b" { }', 1, 4, "needs require"),
    ("if header :comparator { }", 1, 11, ":comparator needs a string argument"),
    ('require "relational"; if header :value "xx" "a" "b" { }', 1, 26, 'unknown relational operator "xx"'),
    ('require "regex"; if header :regex "a" "(" { }', 1, 21, "invalid regular expression"),
    ('require "envelope"; if envelope "cc" "x" { }', 1, 24, 'unknown envelope part "cc"'),
    ('redirect "no-at-sign";', 1, 1, "redirect to an invalid address"),
    ('redirect ["a@b.c"];', 1, 10, "'redirect' takes string"),
    ('"abc', 1, 1, "unterminated string"),
    ("/* open", 1, 1, "unterminated comment"),
    ('require "variables"; set "a" text:\nno end', 1, 30, "unterminated multi-line string"),
    ("if size :over 99999999999999999999 { }", 1, 15, "is too large"),
    ("if size :over 1X { }", 1, 16, "after a number"),
    ("keep; }", 1, 7, "unexpected '}'"),
    ("if true { keep; } @", 1, 19, "unexpected character '@'"),
    (": keep;", 1, 1, "':' must start a tagged argument"),
    ('if exists ["a", ] { }', 1, 17, "expected a string"),
    ("if allof (true false) { }", 1, 16, "expected ',' or ')'"),
    ("if not { }", 1, 8, "'not' needs a test"),
    ("if allof true { }", 1, 10, "'allof' needs a test list in parentheses"),
    ("keep (true);", 1, 6, "takes no test list"),
    ('require "variables"; set "1a" "x";', 1, 22, 'invalid variable name "1a"'),
    ('require "index"; if header :last :is "a" "b" { }', 1, 21, ":last needs :index"),
    ('require "index"; if header :index 0 :is "a" "b" { }', 1, 21, ":index counts from 1"),
    ('require "include"; include "../etc/passwd";', 1, 20, "invalid script name"),
    ('require ["imap4flags"]; setflag "name" "x";', 1, 25, 'needs require "variables"'),
    ('require "vacation"; vacation :seconds 1 "x";', 1, 30, ':seconds needs require "vacation-seconds"'),
    ('require "vacation"; vacation :days 1 :days 2 "x";', 1, 38, ":days given twice"),
    ('require "spamtest"; if spamtest :percent "1" { }', 1, 33, ':percent needs require "spamtestplus"'),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), ERRORS)
def test_errors_say_where(source: str, line: int, column: int, message: str) -> None:
    with pytest.raises(SieveError) as caught:
        parse(source)
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (line, column)
    assert str(error) == f"line {line}:{column}: {error.message}"


def test_warnings_for_what_never_matches() -> None:
    script = parse(
        'require "date";\nif header :is "a b" "x" { }\n'
        'if date :zone "CET" "date" "year" "2026" { }\nif currentdate "century" "21" { }'
    )
    assert script.warnings == (
        'line 2:4: invalid header name "a b": it never matches',
        'line 3:4: zone "CET" is not +hhmm or -hhmm: the default zone is used',
        'line 4:4: unknown date part "century": the test is always false',
    )
    assert parse("keep;").warnings == ()


def test_invalid_field_name_for_editheader_is_an_error() -> None:
    with pytest.raises(SieveError, match='invalid header name "a b"'):
        parse('require "editheader"; addheader "a b" "x";')


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(SieveError, match="nested more than"):
        parse("if " + "not " * 200 + "true { }")
    with pytest.raises(SieveError, match="nested more than"):
        parse("if true { " * 200 + "}" * 200)


_TOKENS = st.sampled_from(
    [
        "if", "elsif", "else", "require", "keep", "discard", "stop", "fileinto", "redirect", "header", "address",
        "allof", "anyof", "not", "true", "size", "set", "vacation", "body", "date", ":is", ":matches", ":regex",
        ":value", ":count", ":over", ":index", ":last", ":comparator", '"fileinto"', '"variables"', '"regex"',
        '"a@b.c"', '"${1}"', '"*"', '"i;ascii-numeric"', '"gt"', "[", "]", "(", ")", "{", "}", ",", ";", "1", "10K",
        "text:\n.\n", "#c\n", "/* */", '"', "\\", "${hex:40}", " ", "\n",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=40).map(" ".join))
def test_token_soup_parses_or_fails_cleanly(source: str) -> None:
    try:
        assert isinstance(parse(source), Script)
    except SieveError as error:
        assert error.line >= 1 and error.column >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_fails_cleanly(source: str) -> None:
    try:
        assert isinstance(parse(source), Script)
    except SieveError as error:
        assert error.line >= 1 and error.column >= 1


def test_multiline_lines_end_in_crlf_even_from_lf_files() -> None:
    script = parse('require "variables";\nset "a" text:\none\r\ntwo\n.\n;')
    assert script.commands[1].args[1] == "one\r\ntwo\r\n"
