"""The tokenizer: decoded text parts, HTML to text, links and hosts, chosen headers."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.filters.spam.tokens import MAX_HEADER, features


def test_quoted_printable_in_a_legacy_charset_is_decoded() -> None:
    found = features(
        b"From: a@b.example\r\nSubject: =?iso-8859-1?q?Caf=E9?= menu\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nDer Caf=E9 ist ge=\r\nschlossen.\r\n"
    )
    assert {"café", "geschlossen.", "der café"} <= found.tokens
    assert "s:café" in found.tokens and "s:café menu" in found.tokens
    assert found.headers["subject"] == "Café menu"
    assert found.text_parts == 1 and found.html_parts == 0


def test_base64_html_becomes_text_with_its_links() -> None:
    html = (
        b"<html><head><style>p {color: red}</style></head><body><p>Verify&nbsp;your <b>account</b></p>"
        b'<a href="http://evil.phish.example/login">https://www.mybank.example/</a>'
        b'<a href="https://docs.good.example/x">documentation</a></body></html>'
    )
    message = (
        b"From: bank@mybank.example\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html)
        + b"\r\n--XX--\r\n"
    )
    found = features(message)
    assert {"verify", "your", "account", "tag:a", "tag:b", "u:evil.phish.example", "u:phish.example"} <= found.tokens
    assert "color" not in found.tokens  # style sheets are not text
    assert found.hosts == {"evil.phish.example", "docs.good.example", "www.mybank.example"}  # links and text
    assert found.link_mismatches == 1  # the link shows one bank and goes elsewhere
    assert found.html_parts == 1 and found.text_parts == 0
    assert "ct:multipart/alternative" in found.tokens and "cte:base64" in found.tokens


def test_trace_fields_and_other_filters_verdicts_are_not_features() -> None:
    found = features(
        b"From bounce@x.example Fri Nov 27 10:00:00 2026\r\n"
        b"Return-Path: <bounce@x.example>\r\nDelivered-To: alice@example.test\r\n"
        b"X-Spam-Status: Yes, score=99 tests=SOMETHING\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        b"Received: from relay.x.example by mx.example.test\r\nFrom: Bob <bob@x.example>\r\n\r\nhello there\r\n"
    )
    assert not any("something" in token or "h:x-spam" in token for token in found.tokens)
    assert "h:delivered-to" not in found.tokens and "h:date" not in found.tokens
    assert "Hreceived:relay.x.example" in found.tokens and "f:@x.example" in found.tokens
    assert found.headers["date"].startswith("Fri")  # the rules still see it
    assert {"hello", "there", "hello there"} <= found.tokens


def test_a_stored_or_imported_copy_gives_the_features_of_the_message_the_mx_scored() -> None:
    scored = (
        b"Received: from relay.x.example ([192.0.2.7])\r\n\tby mx.example.test (Pochta) with ESMTP id 1\r\n"
        b"From: Bob <bob@x.example>\r\nTo: alice@example.test\r\nSubject: lunch\r\n\r\nsee you at noon\r\n"
    )
    stored = (  # as an mbox export from another server's folder has it: what we and the store added
        b"From bob@x.example  Fri Nov 27 10:00:00 2026\r\n"
        b"Return-Path: <bob@x.example>\r\nDelivered-To: alice@example.test\r\nX-Original-To: alice@example.test\r\n"
        b"Delivery-Date: Fri, 27 Nov 2026 10:00:01 +0000\r\n"
        b"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=x.example\r\n"
        b"X-Spam-Status: No, score=-3.1 required=5.0\r\nX-Spam-Score: -3.1\r\n"
    ) + scored.replace(
        b"\r\n\r\n",
        b"\r\nStatus: RO\r\nX-Status: A\r\nX-Keywords: $NotJunk\r\nX-UID: 7\r\nX-Mozilla-Status: 0001\r\n"
        b"Lines: 1\r\nContent-Length: 17\r\n\r\n",
        1,
    )
    found, original = features(stored), features(scored)
    assert found.tokens == original.tokens
    assert found.grams.tolist() == original.grams.tolist()  # the 4-gram window starts at the same octet


def test_a_from_field_in_obsolete_syntax_is_not_taken_for_an_mbox_line() -> None:
    obsolete = b"From : bob@x.example\r\nSubject: lunch\r\n\r\nsee you at noon\r\n"
    assert int.from_bytes(b"From", "little") in features(obsolete).grams.tolist()
    mbox = b"From bob@x.example  Fri Nov 27 10:00:00 2026\r\n" + obsolete
    assert features(mbox).grams.tolist() == features(obsolete).grams.tolist()


def test_signatures_give_their_signer_only() -> None:
    plain = b"From: a@b.example\r\nSubject: hello\r\n\r\nsee you at noon\r\n"
    signed = (
        b"ARC-Seal: i=1; a=rsa-sha256; t=1700000000; cv=none; d=relay.example;\r\n"
        b"\tb=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=B.example; s=sel;\r\n"
        b"\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        b"\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmU=\r\n" + plain
    )
    found, unsigned = features(signed), features(plain)
    assert found.grams.tolist() == unsigned.grams.tolist()  # signatures take no room in the 4-gram window
    assert found.tokens - unsigned.tokens == {
        "h:dkim-signature",
        "Hdkim-signatu:d=b.example",
        "h:arc-seal",
        "Harc-seal:d=relay.example",
    }


def test_a_message_without_text_says_so() -> None:
    found = features(b"From: a@b.example\r\nContent-Type: image/png\r\n\r\niVBORw0KGgo=\r\n")
    assert {"x:no-words", "ct:image/png"} <= found.tokens


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_features_never_an_exception(data: bytes) -> None:
    features(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["text/plain", "text/html", "multipart/mixed; boundary=b", "message/rfc822"]),
    st.sampled_from(["base64", "quoted-printable", "8bit", "x-unknown"]),
    st.sampled_from(["utf-8", "iso-2022-jp", "utf-16", "no-such-charset", '"utf-8']),
    st.binary(max_size=500),
)
def test_odd_parts_never_raise(content_type: str, encoding: str, charset: str, body: bytes) -> None:
    header = f"Content-Type: {content_type}; charset={charset}\r\nContent-Transfer-Encoding: {encoding}\r\n"
    features(b"From: a@b.example\r\n" + header.encode() + b"\r\n--b\r\n" + header.encode() + b"\r\n" + body)


def test_a_huge_header_block_gives_words_from_its_first_part_only_but_all_its_fields() -> None:
    filler = "".join(f"X-Filler-{n}: padding words here number {n}\r\n" for n in range(4000))  # 170 KB
    data = f"X-Early: firstword\r\n{filler}X-Late: lastword\r\nSubject: late subject\r\n\r\nbody\r\n".encode()
    found = features(data)
    assert len(filler) > MAX_HEADER
    assert "Hx-early:firstword" in found.head and "x:huge-header" in found.head
    assert not any("lastword" in token or "late" in token for token in found.head)  # words past the limit
    assert found.headers["subject"] == "late subject" and found.headers["x-late"] == "lastword"  # for the rules
