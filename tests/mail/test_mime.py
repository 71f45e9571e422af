"""The MIME parser, IMAP sections, ENVELOPE and BODYSTRUCTURE on hand-written messages.

Expected FETCH values agree with Dovecot 2.3.19 (APPEND, then FETCH) except where a comment says
why not; Dovecot sometimes sends a literal where we send the same string quoted.
"""

from __future__ import annotations

import mmap

import pytest

from pochta.mail import mime
from pochta.mail.mime import Part

from . import mime_samples as samples


def _slice(data: bytes, bounds: tuple[int, int] | None) -> bytes | None:
    return None if bounds is None else data[bounds[0] : bounds[1]]


# --- the part tree ----------------------------------------------------------------------------------


def test_simple_message_is_one_part():
    root = mime.parse(samples.SIMPLE)
    assert root.content_type == "text/plain"
    assert root.children == () and root.message is None
    assert samples.SIMPLE[root.body_start :] == b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    assert samples.SIMPLE[: root.body_start].endswith(b"US-ASCII\r\n\r\n")  # the blank line is in the header
    assert root.end == len(samples.SIMPLE)


def test_alternative_children_exclude_the_line_break_before_each_delimiter():
    data = samples.ALTERNATIVE
    root = mime.parse(data)
    assert root.content_type == "multipart/alternative"
    plain, html = root.children
    assert data[plain.body_start : plain.end] == b"Hello=20world\r\nsecond line"
    assert data[plain.start : plain.body_start] == (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    assert data[html.body_start : html.end] == b"<p>Hello world</p>"
    assert root.end == len(data)  # preamble and epilogue stay in the multipart's body


def test_nested_message_rfc822():
    data = samples.NESTED
    root = mime.parse(data)
    _text, forwarded, single = root.children
    assert forwarded.content_type == "message/rfc822"
    inner = forwarded.message
    assert inner is not None
    assert (inner.start, inner.end) == (forwarded.body_start, forwarded.end)
    assert inner.content_type == "multipart/alternative"
    assert [data[p.body_start : p.end] for p in inner.children] == [b"inner text", b"<b>inner</b>"]
    assert single.message is not None
    assert data[single.message.body_start : single.message.end] == b"just text"
    assert [part.content_type for part in root.walk()] == [
        "multipart/mixed",
        "text/plain",
        "message/rfc822",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "message/rfc822",
        "text/plain",
    ]


def test_bare_lf_message():
    data = samples.BARE_LF
    root = mime.parse(data)
    (child,) = root.children
    assert data[child.start : child.body_start] == b"Content-Type: text/plain\n\n"
    assert data[child.body_start : child.end] == b"one\ntwo"


def test_no_blank_line_the_first_non_field_line_starts_the_body():
    # Dovecot makes all of it header and the body empty; Python's email agrees with us.
    data = samples.NO_BLANK_LINE
    root = mime.parse(data)
    assert data[root.body_start :] == b"This line starts the body.\r\nSecond line.\r\n"


def test_non_field_line_followed_by_fields_stays_in_the_header():
    data = b"From x@y Mon Jan  1 00:00:00 2024\r\nSubject: mbox\r\nbroken line\r\nTo: a@b\r\n\r\nbody"
    root = mime.parse(data)
    assert data[root.body_start :] == b"body"
    assert b'(NIL "mbox" NIL NIL NIL ((NIL NIL "a" "b"))' in mime.parse_message(data).envelope


def test_no_headers_at_all():
    root = mime.parse(samples.NO_HEADERS)
    assert (root.start, root.body_start) == (0, 2)
    assert mime.parse(b"").body == (0, 0)
    assert mime.parse(b"Subject: only a header").body == (22, 22)


def test_truncated_multipart_last_part_runs_to_the_end():
    data = samples.TRUNCATED
    first, second = mime.parse(data).children
    assert data[first.body_start : first.end] == b"first"
    assert data[second.body_start : second.end] == b"never closed\r\n"


def test_multipart_without_boundary_or_delimiters_has_no_children():
    assert mime.parse(b"Content-Type: multipart/mixed\r\n\r\n--x\r\n").children == ()
    root = mime.parse(b"Content-Type: multipart/mixed; boundary=x\r\n\r\nno delimiter here\r\n")
    assert root.children == ()
    assert mime.parse_message(b"Content-Type: multipart/mixed\r\n\r\n").body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
    )


def test_delimiter_needs_only_whitespace_after_it():
    data = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n"
        b"--abc \r\n\r\ninner\r\n--abc--\r\n"
        b"--ab--\r\n--abx\r\n"
    )
    (inner,) = mime.parse(data).children
    assert inner.content_type == "multipart/mixed"
    (leaf,) = inner.children
    assert data[leaf.body_start : leaf.end] == b"inner"


def test_empty_part_between_adjacent_delimiters():
    data = b"Content-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n--e\r\n\r\nx\r\n--e--\r\n"
    empty, full = mime.parse(data).children
    assert empty.start == empty.body_start == empty.end
    assert data[full.body_start : full.end] == b"x"


def test_digest_children_default_to_message_rfc822():
    data = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nFrom: a@b\r\nSubject: one\r\n\r\nfirst\r\n--d--\r\n"
    )
    (child,) = mime.parse(data).children
    assert child.content_type == "message/rfc822"
    assert child.message is not None


def test_encoded_message_rfc822_is_a_leaf():
    data = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nRnJvbTogYUBiDQo=\r\n"
    root = mime.parse(data)
    assert root.message is None
    assert mime.parse_message(data).body == (
        b'("message" "rfc822" NIL NIL NIL "base64" 18 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1)'
    )


def test_nesting_deeper_than_the_cap_is_a_leaf():
    depth = mime.MAX_DEPTH + 20
    data = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
    data += b"\r\nleaf\r\n"
    root = mime.parse(data)
    levels = 0
    part = root
    while part.children:
        (part,) = part.children
        levels += 1
    assert levels == mime.MAX_DEPTH
    assert part.content_type == "multipart/mixed"
    assert b"(" in mime.parse_message(data).bodystructure


def test_memoryview_and_mmap_give_the_same_tree(tmp_path):
    data = samples.NESTED
    expected = mime.parse_message(data)
    assert mime.parse_message(memoryview(data)) == expected
    assert mime.parse_message(bytearray(data)) == expected
    path = tmp_path / "message"
    path.write_bytes(data)
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert mime.parse_message(mapped) == expected


# --- IMAP sections (RFC 9051 §6.4.5) -------------------------------------------------------------------


def test_sections_of_a_single_part_message():
    data = samples.SIMPLE
    root = mime.parse(data)
    assert mime.section_range(root, ()) == (0, len(data))
    assert _slice(data, mime.section_range(root, (), "HEADER")) == data[: root.body_start]
    assert _slice(data, mime.section_range(root, (), "TEXT")) == data[root.body_start :]
    assert _slice(data, mime.section_range(root, (1,))) == data[root.body_start :]
    assert mime.find_part(root, (1,)) is root
    assert mime.section_range(root, (2,)) is None
    assert mime.section_range(root, (1, 1)) is None
    assert mime.section_range(root, (1,), "HEADER") is None  # not a message/rfc822 part
    assert mime.section_range(root, (), "MIME") is None


def test_sections_of_a_nested_message():
    data = samples.NESTED
    root = mime.parse(data)

    def section(numbers: tuple[int, ...], text: mime.SectionText = "") -> bytes | None:
        return _slice(data, mime.section_range(root, numbers, text))

    assert section((1,)) == b"See below."
    assert section((1,), "MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert section((2,)).startswith(b"From: inner@example.com\r\n")  # the whole encapsulated message
    assert section((2,), "HEADER") == (
        b"From: inner@example.com\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
    )
    assert section((2,), "TEXT").startswith(b"--b2\r\n")
    assert section((2,), "MIME") == b"Content-Type: message/rfc822\r\n\r\n"
    assert section((2, 1)) == b"inner text"
    assert section((2, 2)) == b"<b>inner</b>"
    assert section((2, 2), "MIME") == b"Content-Type: text/html\r\n\r\n"
    assert section((2, 3)) is None
    assert section((3, 1)) == b"just text"  # a non-multipart encapsulated message: part 1 is its body
    assert section((3, 1), "MIME") == b"From: single@example.com\r\n\r\n"
    assert section((3, 2)) is None
    assert section((1, 1)) is None
    assert section((0,)) is None
    assert section((4,)) is None


def test_root_message_rfc822():
    data = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body"
    root = mime.parse(data)
    assert _slice(data, mime.section_range(root, (1,))) == b"Subject: in\r\n\r\ninner body"
    assert _slice(data, mime.section_range(root, (1,), "HEADER")) == b"Subject: in\r\n\r\n"
    assert _slice(data, mime.section_range(root, (1, 1))) == b"inner body"


# --- ENVELOPE and BODYSTRUCTURE ---------------------------------------------------------------------------


def test_simple_fetch_items():
    parsed = mime.parse_message(samples.SIMPLE)
    assert parsed.envelope == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) (("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) ((NIL NIL "mooch" "owatagu.siam.edu.example")) '
        b'NIL NIL NIL "<B27397-0100000@Blurdybloop.example>")'
    )
    # Types and parameter values keep the message's case (Dovecot prints this exact default
    # text/plain; charset=us-ascii lowercased, a storage shortcut of its own).
    assert parsed.bodystructure == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 55 1 NIL NIL NIL NIL)'
    assert parsed.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 55 1)'


def test_alternative_fetch_items():
    parsed = mime.parse_message(samples.ALTERNATIVE)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 26 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "XX") NIL NIL NIL)'
    )
    assert parsed.body == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 26 1)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0) "alternative")'
    )
    assert parsed.envelope == (
        b'(NIL "alt" ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) '
        b'((NIL NIL "b" "example.com")) NIL NIL NIL NIL)'
    )


def test_mixed_with_attachment_has_all_extension_data():
    parsed = mime.parse_message(samples.MIXED)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 19 0 NIL NIL NIL NIL)'
        b'("application" "pdf" ("name" "report.pdf") "<part2@example.com>" "The report" "base64" 22 '
        b'"Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "long name.pdf")) ("en" "de") '
        b'"http://example.com/report.pdf") "mixed" ("boundary" "outer") NIL ("en") NIL)'
    )
    assert parsed.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 19 0)'
        b'("application" "pdf" ("name" "report.pdf") "<part2@example.com>" "The report" "base64" 22) "mixed")'
    )


def test_nested_message_fetch_items():
    parsed = mime.parse_message(samples.NESTED)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 194 (NIL "inner" ((NIL NIL "inner" "example.com")) '
        b'((NIL NIL "inner" "example.com")) ((NIL NIL "inner" "example.com")) NIL NIL NIL NIL NIL) '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "b2") NIL NIL NIL) 13 NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 37 (NIL NIL ((NIL NIL "single" "example.com")) '
        b'((NIL NIL "single" "example.com")) ((NIL NIL "single" "example.com")) NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) '
        b'"mixed" ("boundary" "b1") NIL NIL NIL)'
    )


def test_envelope_address_lists_with_groups_routes_and_quoting():
    parsed = mime.parse_message(samples.GROUPS)
    assert parsed.envelope == (
        b'(NIL "=?utf-8?q?caf=C3=A9?=" '  # RFC 2047 words go out as written
        b'(("Joe Q. Public" NIL "john.q.public" "example.com")) '
        b'(("Secretary" NIL "sec" "example.com")) '
        b'((NIL "@route.example,@two.example" "routed" "example.com")) '
        b'(("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")("Who?" NIL "one" "y.test")) '
        b'((NIL NIL "boss" "nil.test")("Giant; \\"Big\\" Box" NIL "sysservices" "example.net")) '
        b'((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")'
        b'("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)(NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)) '
        b'"<parent@example.com>" "<5678.21-Nov-1997@example.com>")'
    )


def test_missing_headers_give_nil():
    parsed = mime.parse_message(samples.NO_HEADERS)
    assert parsed.envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert parsed.bodystructure == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 1 NIL NIL NIL NIL)'


def test_bare_lf_and_truncated_fetch_items():
    bare = mime.parse_message(samples.BARE_LF)
    assert bare.envelope.startswith(b'(NIL "bare LF" ((NIL NIL "lf" "example.com"))')
    assert bare.body == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1) "mixed")'
    truncated = mime.parse_message(samples.TRUNCATED)
    assert truncated.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 1) "mixed")'
    )


def test_eight_bit_and_awkward_strings_become_literals():
    data = 'Subject: café\r\nFrom: "Zoë" <z@example.com>\r\n\r\n'.encode()
    envelope = mime.parse_message(data).envelope
    assert envelope.startswith(b'(NIL {5}\r\ncaf\xc3\xa9 (({4}\r\nZo\xc3\xab NIL "z" "example.com"))')


def test_sender_and_reply_to_default_to_from_and_repeated_address_fields_join():
    data = b"From: a@x\r\nSender:\r\nTo: b@x\r\nTo: c@x\r\nSubject: one\r\nSubject: two\r\n\r\n"
    assert mime.parse_message(data).envelope == (
        b'(NIL "two" ((NIL NIL "a" "x")) ((NIL NIL "a" "x")) ((NIL NIL "a" "x")) '
        b'((NIL NIL "b" "x")(NIL NIL "c" "x")) NIL NIL NIL NIL)'
    )


def test_invalid_encoding_is_sent_as_7bit_and_missing_subtype_as_default():
    data = b"Content-Type: text\r\nContent-Transfer-Encoding: quoted printable\r\n\r\nx\r\n"
    assert mime.parse_message(data).body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'


# --- storage -----------------------------------------------------------------------------------------


def test_dumps_and_loads_round_trip():
    for data in (samples.NESTED, samples.MIXED, samples.SIMPLE, b""):
        root = mime.parse(data)
        assert mime.loads(mime.dumps(root)) == root
        parsed = mime.parse_message(data)
        assert mime.ParsedMessage.loads(parsed.dumps()) == parsed
    eight_bit = mime.parse_message("Subject: café\r\n\r\n".encode())
    assert mime.ParsedMessage.loads(eight_bit.dumps()) == eight_bit


def test_dumps_is_compact():
    assert mime.dumps(Part(start=0, body_start=2, end=9)) == b'[0,2,9,"text/plain"]'


@pytest.mark.parametrize("junk", [b"", b"{}", b"[1,2]", b'{"v":2}', b'[0,1,2,"a",{}]'])
def test_loads_rejects_junk(junk):
    with pytest.raises(ValueError):
        if junk.startswith(b"{"):
            mime.ParsedMessage.loads(junk)
        else:
            mime.loads(junk)


def _many_parts(count: int) -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(count))
    return b"Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\nepilogue\r\n"


def test_a_message_has_at_most_max_parts_parts_the_last_holding_the_rest() -> None:
    data = _many_parts(mime.MAX_PARTS + 500)
    root = mime.parse(data)
    assert sum(1 for _ in root.walk()) == mime.MAX_PARTS
    last = root.children[-1]
    assert last.end == root.end == len(data)  # the rest of the multipart, unparsed
    assert data[last.body_start :].startswith(b"part %d\r\n--b\r\n" % (mime.MAX_PARTS - 2))
    assert data[root.children[-2].body_start : root.children[-2].end] == b"part %d" % (mime.MAX_PARTS - 3)
    small = mime.parse(_many_parts(3))  # far under the limit: every part, as before
    assert [bytes(_many_parts(3)[c.body_start : c.end]) for c in small.children] == [b"part 0", b"part 1", b"part 2"]


def test_the_part_limit_holds_across_nested_multiparts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mime, "MAX_PARTS", 6)
    inner = b"Content-Type: multipart/mixed; boundary=i\r\n\r\n" + b"".join(
        b"--i\r\n\r\nin %d\r\n" % n for n in range(5)
    )
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        + inner
        + b"--i--\r\n--o\r\n\r\nafter\r\n--o\r\n\r\nlast\r\n--o--\r\n"
    )
    root = mime.parse(data)
    parts = list(root.walk())
    assert len(parts) <= mime.MAX_PARTS + mime.MAX_DEPTH  # one more leaf at most per level left early
    assert root.children[-1].end == len(data) and not root.children[-1].children
