"""Header helpers for SEARCH, FETCH HEADER.FIELDS and display: lookup, RFC 2047, RFC 2231, dates."""

from __future__ import annotations

import datetime as dt

import pytest

from pochta.mail import headers

BLOCK = (
    b"Received: from a\r\n\tby b\r\n"
    b"Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?IGF1IGxhaXQ=?=\r\n"
    b"X-Multi: one\r\n"
    b"x-multi: two\r\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    b"\r\n"
)


def test_header_values_are_unfolded_and_case_insensitive():
    assert headers.header_value(BLOCK, "received") == b"from a\tby b"
    assert headers.header_values(BLOCK, "X-MULTI") == [b"one", b"two"]
    assert headers.header_value(BLOCK, "missing") is None
    assert [name for name, _ in headers.fields(BLOCK)] == [b"Received", b"Subject", b"X-Multi", b"x-multi", b"Date"]


def test_select_fields():
    assert headers.select_fields(BLOCK, ["x-multi", "DATE"]) == (
        b"X-Multi: one\r\nx-multi: two\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\n"
    )
    assert headers.select_fields(b"A: 1\nB: 2\n folded\n\n", ["c"], exclude=True) == b"A: 1\r\nB: 2\r\n folded\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?iso-8859-1?q?caf=E9?= =?utf-8?b?IGF1IGxhaXQ=?=", "café au lait"),
        (b"plain =?utf-8?q?x?= and", "plain x and"),
        (b"=?x-unknown?q?a=E9?=", "a\ufffd"),  # unknown charset: UTF-8 with replacement
        (b"=?utf-8?b?bad base64?=", "=?utf-8?b?bad base64?="),
        (b"=?utf-8?b?YWI?=", "ab"),  # missing padding
        (b"=?utf-8*en?q?hi?=", "hi"),  # RFC 2231 language
        ("caf\u00e9".encode(), "café"),  # raw UTF-8 (RFC 6532)
        (b"caf\xe9", "café"),  # raw Latin-1
    ],
)
def test_decode_words(raw: bytes, text: str):
    assert headers.decode_words(raw) == text


def test_content_type_with_rfc2231_continuations():
    parsed = headers.parse_content_type(
        b"Application/X-Stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20;"
        b' title*2="isn\'t it!"; Name="a \\"b\\""'
    )
    assert parsed is not None
    assert parsed.mime_type == "application/x-stuff"
    assert parsed.raw_type == b"Application"
    assert parsed.param("title") == "This is even more ***fun*** isn't it!"
    assert parsed.param("NAME") == 'a "b"'
    assert parsed.params[0][0] == b"title*"  # joined at the position of its first section
    assert headers.parse_content_type(b"text") is None
    assert headers.parse_content_type(None) is None
    assert headers.parse_content_type(b"text/plain (comment); charset=utf-8").param("charset") == "utf-8"  # type: ignore[union-attr]


def test_encoded_filename():
    parsed = headers.parse_content_type(b"application/pdf; name*=iso-8859-1''Fr%F6sche.pdf")
    assert parsed is not None
    assert parsed.param("name") == "Frösche.pdf"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Tue, 1 Jul 2003 10:52:37 +0200", dt.datetime(2003, 7, 1, 8, 52, 37, tzinfo=dt.UTC)),
        (b"Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", dt.datetime(1997, 11, 21, 15, 55, 6, tzinfo=dt.UTC)),
        (b"1 Jan 2001 00:00 -0000", dt.datetime(2001, 1, 1, tzinfo=dt.UTC)),
        (b"01 Jan 2001 00:01+0000", dt.datetime(2001, 1, 1, 0, 1, tzinfo=dt.UTC)),
    ],
)
def test_parse_date(raw: bytes, expected: dt.datetime):
    parsed = headers.parse_date(raw)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize("raw", [b"", b"garbage", b"<HR>", b"32 Foo 2001 99:99:99 +9999", None])
def test_parse_date_failures_are_none(raw: bytes | None):
    assert headers.parse_date(raw) is None


def test_a_content_type_with_8bit_octets_is_not_a_type() -> None:
    from pochta.mail.headers import parse_content_type
    from pochta.mail.mime import parse_message

    assert parse_content_type(b"text/\xffplain") is None
    parsed = parse_message(b"Content-Type: mult\xffipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nbody\r\n--x--\r\n")
    assert parsed.root.content_type == "text/plain"  # found by hypothesis: this used to raise
