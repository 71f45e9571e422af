"""RFC 5229 variables: set, modifiers, ${} expansion, match variables, the string test."""

from __future__ import annotations

from pochta.filters.sieve import FileInto
from tests.filters.sieve.sample import message, outcome


def _boxes(script: str, text: str | None = None) -> list[str]:
    result = outcome(script, message(text) if text else None)
    assert result.errors == ()
    return [action.mailbox for action in result.actions if isinstance(action, FileInto)]


def test_set_and_expand_case_insensitive_names() -> None:
    assert _boxes('require ["variables", "fileinto"]; set "Box" "a"; fileinto "${box}.${BOX}";') == ["a.a"]


def test_unknown_variables_expand_to_nothing_and_expansion_is_not_recursive() -> None:
    script = 'require ["variables", "fileinto"]; set "a" "${b}"; set "c" "$${a}{x}"; fileinto "[${nope}]${c}";'
    assert _boxes(script) == ["[]${x}"]  # "${x}" built by expansion is not expanded again


def test_expansion_only_with_require() -> None:
    assert _boxes('require "fileinto"; fileinto "${x}";') == ["${x}"]


def test_modifiers_rfc_5229_section_4_examples() -> None:
    script = (
        'require ["variables", "fileinto"];'
        'set "a" "juMBlEd lETteRS";'
        'set :length "b" "${a}"; fileinto "${b}";'
        'set :lower "b" "${a}"; fileinto "${b}";'
        'set :upperfirst "b" "${a}"; fileinto "${b}";'
        'set :upperfirst :lower "b" "${a}"; fileinto "${b}";'
        'set :quotewildcard "b" "Rock*"; fileinto "${b}";'
    )
    assert _boxes(script) == ["15", "jumbled letters", "JuMBlEd lETteRS", "Jumbled letters", "Rock\\*"]


def test_quoteregex() -> None:
    assert _boxes('require ["variables", "regex", "fileinto"]; set :quoteregex "b" "a.b*c"; fileinto "${b}";') == [
        "a\\.b\\*c"
    ]


def test_match_variables_from_matches() -> None:
    script = (
        'require ["variables", "fileinto"];if header :matches "Subject" "* on *?" { fileinto "${0}|${1}|${2}|${3}"; }'
    )
    assert _boxes(script) == ["Lunch on Friday?|Lunch|Friday|?"]


def test_match_variables_only_change_on_success() -> None:
    script = (
        'require ["variables", "fileinto"];'
        'if header :matches "Subject" "Lunch *" { }'
        'if header :matches "Subject" "Dinner *" { }'
        'fileinto "${1}";'
    )
    assert _boxes(script) == ["on Friday?"]


def test_match_variables_from_regex_groups() -> None:
    script = (
        'require ["variables", "regex", "fileinto"];'
        'if address :regex "from" "^([a-z]+)@(.+)$" { fileinto "${2}/${1}/${3}"; }'
    )
    assert _boxes(script) == ["example.org/alice/"]


def test_string_test_and_count_ignores_empty_strings() -> None:
    script = (
        'require ["variables", "relational", "comparator-i;ascii-numeric", "fileinto"];'
        'set "a" "x";'
        'if string :is "${a}" "x" { fileinto "is"; }'
        'if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "", "${b}"] "1" { fileinto "count"; }'
        'if string :matches " ${a} " "* x *" { fileinto "matches"; }'
    )
    assert _boxes(script) == ["is", "count", "matches"]


def test_unknown_namespace_stays_as_written() -> None:
    assert _boxes('require ["variables", "fileinto"]; fileinto "${foo.bar}";') == ["${foo.bar}"]


def test_variables_in_test_arguments() -> None:
    script = (
        'require ["variables", "fileinto"]; set "h" "subject"; set "k" "friday";'
        'if header :contains "${h}" "${k}" { fileinto "hit"; }'
    )
    assert _boxes(script) == ["hit"]


def test_variable_values_are_bounded() -> None:
    script = (
        'require ["variables", "fileinto"]; set "a" "0123456789";'
        + "".join('set "a" "${a}${a}";' for _ in range(16))
        + 'set :length "n" "${a}"; fileinto "${n}";'
    )
    assert _boxes(script) == [str(64 * 1024)]
