"""IMAP strings: quoted when that is possible, a literal otherwise; always readable back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.mail.imapstring import render_string

from . import imapsyntax


def test_plain_text_is_quoted_as_it_is():
    assert render_string(b"Thu,  3 Dec 2026 08:07:29 +0000 (UTC)") == b'"Thu,  3 Dec 2026 08:07:29 +0000 (UTC)"'
    assert render_string(b"") == b'""'


def test_quotes_and_backslashes_are_escaped():
    assert render_string(b'say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'


def test_eight_bit_text_is_a_literal():
    assert render_string("café".encode()) == b"{5}\r\ncaf\xc3\xa9"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40) | st.sampled_from([b'a"b', b"a\\b", b"tab\there", b"\x7f", b"x\r\ny", b"\r\r\n"]))
def test_any_octets_read_back_with_line_breaks_as_spaces_and_no_nul(value: bytes):
    expected = value.replace(b"\r\n", b" ").replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\x00", b"")
    assert imapsyntax.read(render_string(value)) == expected
