"""RFC 6609 include: personal and global scripts, :once, :optional, return, global variables."""

from __future__ import annotations

from pochta.filters.sieve import FileInto, Keep
from tests.filters.sieve.sample import outcome


def _scripts(personal: dict[str, str], shared: dict[str, str] | None = None) -> object:
    def include(name: str, is_global: bool) -> str | None:
        return (shared or {}).get(name) if is_global else personal.get(name)

    return include


def _boxes(script: str, personal: dict[str, str], shared: dict[str, str] | None = None) -> list[str]:
    result = outcome(script, include=_scripts(personal, shared))
    assert result.errors == ()
    return [action.mailbox for action in result.actions if isinstance(action, FileInto)]


def test_personal_and_global_locations() -> None:
    personal = {"a": 'require "fileinto"; fileinto "personal-a";'}
    shared = {"a": 'require "fileinto"; fileinto "global-a";'}
    script = 'require "include"; include "a"; include :global "a"; include :personal "a";'
    assert _boxes(script, personal, shared) == ["personal-a", "global-a"]


def test_once_includes_once() -> None:
    personal = {
        "lib": 'require ["include", "fileinto"]; fileinto "lib";',
        "other": 'require "include"; include :once "lib";',
    }
    script = 'require "include"; include :once "lib"; include "other"; include :once "lib";'
    result = outcome(script, include=_scripts(personal))
    assert result.errors == ()
    assert [a for a in result.actions if isinstance(a, FileInto)] == [FileInto(mailbox="lib")]


def test_optional_missing_script_is_skipped_and_required_one_is_an_error() -> None:
    assert outcome('require "include"; include :optional "none"; discard;').implicit_keep is False
    result = outcome('require "include"; include "none"; discard;')
    assert result.actions == (Keep(),) and 'included script "none" does not exist' in result.errors[0]


def test_broken_included_script_is_a_run_time_error() -> None:
    result = outcome('require "include"; include "bad";', include=_scripts({"bad": "if {"}))
    assert result.actions == (Keep(),) and 'included script "bad": line 1:4' in result.errors[0]


def test_return_leaves_only_the_included_script() -> None:
    personal = {"part": 'require ["include", "fileinto"]; fileinto "before"; return; fileinto "after";'}
    script = 'require ["include", "fileinto"]; include "part"; fileinto "main"; return; fileinto "never";'
    assert _boxes(script, personal) == ["before", "main"]


def test_stop_in_an_included_script_stops_everything() -> None:
    personal = {"part": "stop;"}
    assert _boxes('require ["include", "fileinto"]; include "part"; fileinto "never";', personal) == []


def test_recursion_is_bounded() -> None:
    personal = {"loop": 'require "include"; include "loop";'}
    result = outcome('require "include"; include "loop";', include=_scripts(personal))
    assert result.actions == (Keep(),) and "nested more than" in result.errors[0]


def test_global_variables_rfc_6609_example() -> None:
    # RFC 6609 §3.4 example, with the subject test made to match our sample message
    personal = {
        "subject_tests": (
            'require ["include", "variables"];\n'
            'global ["test", "test_mailbox"];\n'
            'if header :contains "Subject" "${test}" { set "test_mailbox" "spam-${test}"; }\n'
        )
    }
    script = (
        'require ["include", "variables", "relational", "fileinto"];\n'
        'global "test";\n'
        'global "test_mailbox";\n'
        'set "test" "$$";\n'
        'include "subject_tests";\n'
        'set "test" "Friday";\n'
        'include "subject_tests";\n'
        'if string :count "eq" "${test_mailbox}" "1" { fileinto "${test_mailbox}"; stop; }\n'
    )
    assert _boxes(script, personal) == ["spam-Friday"]


def test_local_variables_stay_local() -> None:
    personal = {"part": 'require ["include", "variables"]; set "x" "inner"; global "g"; set "g" "shared";'}
    script = (
        'require ["include", "variables", "fileinto"]; set "x" "outer"; global "g";'
        'include "part"; fileinto "${x}-${g}-${global.g}";'
    )
    assert _boxes(script, personal) == ["outer-shared-shared"]


def test_included_scripts_get_the_same_extensions() -> None:
    personal = {"away": 'require "vacation"; vacation "x";'}
    result = outcome(
        'require "include"; include "away";', include=_scripts(personal), extensions=frozenset({"include"})
    )
    assert result.actions == (Keep(),) and 'unsupported extension "vacation"' in result.errors[0]
