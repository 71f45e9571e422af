"""Address lists as ENVELOPE sees them: the regex for the common shapes agrees with the tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.mail.addresslist import (
    GROUP_END,
    MISSING_DOMAIN,
    EnvelopeAddress,
    _parse_tokens,
    _simple_list,
    parse_address_list,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"<bench@example.test>", [EnvelopeAddress(None, None, b"bench", b"example.test")]),
        (b"user@example.test", [EnvelopeAddress(None, None, b"user", b"example.test")]),
        (b"Joe Q Public <j.q@x.test>", [EnvelopeAddress(b"Joe Q Public", None, b"j.q", b"x.test")]),
        (b'"Joe Q. Public" <j@x.test>', [EnvelopeAddress(b"Joe Q. Public", None, b"j", b"x.test")]),
        (b'" " <j@x.test>', [EnvelopeAddress(None, None, b"j", b"x.test")]),
        (
            b"Mary<m@x.test> , jdoe@one.test,Who? <one@y.test>",
            [
                EnvelopeAddress(b"Mary", None, b"m", b"x.test"),
                EnvelopeAddress(None, None, b"jdoe", b"one.test"),
                EnvelopeAddress(b"Who?", None, b"one", b"y.test"),
            ],
        ),
    ],
)
def test_common_shapes_take_the_regex(value: bytes, expected: list[EnvelopeAddress]):
    assert _simple_list(value) == expected
    assert _parse_tokens(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"=?x@y?q?z?=",  # one encoded-word token, not an address: the tokenizer says so
        b"Joe a@b.test",  # a name before a bare address
        b"Joe  Q <a@b.test>",  # two spaces: the name keeps one
        b"a@b.test (Joe)",
        b"group: a@b.test;",
        b"<@route:a@b.test>",
        b"a@b.test b@c.test",
        b"a@b.test,,b@c.test",
        b"",
    ],
)
def test_other_shapes_go_to_the_tokenizer(value: bytes):
    assert _simple_list(value) is None


def test_groups_still_parse():
    assert parse_address_list(b"undisclosed-recipients:;") == [
        EnvelopeAddress(None, None, b"undisclosed-recipients", None),
        GROUP_END,
    ]
    assert parse_address_list(b"=?x@y?q?z?=") == [EnvelopeAddress(None, None, b"=?x@y?q?z?=", MISSING_DOMAIN)]


_SPECIALS = [b"<", b">", b"@", b",", b", ", b";", b":", b'"', b"\\", b"(", b")", b".", b" ", b"\t", b"[", b"]"]
_WORDS = [b"a", b"bob", b"x.test", b"=?utf-8?q?x?=", b"=", b"?", b"\xc3\xa9", b"\x00", b"Joe Q.", b"+tag", b"'"]
_PIECES = st.sampled_from([*_SPECIALS, *_WORDS, b"<a@b.c>", b"x@y", b'"q r" ', b"Joe "])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=14).map(b"".join))
def test_regex_agrees_with_the_tokenizer(value: bytes):
    simple = _simple_list(value)
    if simple is not None:
        assert simple == _parse_tokens(value)
    assert parse_address_list(value) == (simple if simple is not None else _parse_tokens(value))
