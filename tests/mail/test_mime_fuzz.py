"""Any input parses without an exception, into in-bounds, ordered ranges and well-formed FETCH items."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pochta.mail import mime
from pochta.mail.mime import Part

from . import imapsyntax
from . import mime_samples as samples

_SEED = samples.NESTED + samples.MIXED[samples.MIXED.index(b"\r\n\r\n") :]


def _check(part: Part, lower: int, upper: int) -> None:
    assert lower <= part.start <= part.body_start <= part.end <= upper
    previous = part.body_start
    for child in part.children:
        _check(child, previous, part.end)
        previous = child.end
    if part.message is not None:
        _check(part.message, part.body_start, part.end)


def _check_all(data: bytes) -> None:
    parsed = mime.parse_message(data)
    _check(parsed.root, 0, len(data))
    assert (parsed.root.start, parsed.root.end) == (0, len(data))
    for item in (parsed.envelope, parsed.bodystructure, parsed.body):
        imapsyntax.read(item)
    assert mime.ParsedMessage.loads(parsed.dumps()) == parsed
    for part in parsed.root.walk():
        for section in ((), (1,), (1, 1), (2, 1, 1)):
            bounds = mime.section_range(parsed.root, section, "TEXT")
            assert bounds is None or 0 <= bounds[0] <= bounds[1] <= len(data)
        assert part.end <= len(data)


_FRAGMENTS = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r",
        b"\x00",
        b"\xff",
        b"--b1",
        b"--b1--",
        b"--b2\r\n",
        b"--outer\r\n",
        b"Content-Type: multipart/mixed; boundary=b1\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b'From: "a" <b@c>, (x) <@r:d@e>; g:;\r\n',
        b" ",
        b":",
        b'"',
        b"(",
        b"<",
        b"=?utf-8?q?x?=",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes):
    _check_all(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(_SEED)), st.integers(0, 40), st.lists(_FRAGMENTS, max_size=3)), max_size=6)
)
def test_mutated_multipart(edits: list[tuple[int, int, list[bytes]]]):
    data = _SEED
    for wanted, cut, inserts in edits:
        position = min(wanted, len(data))
        data = data[:position] + b"".join(inserts) + data[position + cut :]
    _check_all(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=60))
def test_fragment_soup(fragments: list[bytes]):
    _check_all(b"".join(fragments))
