import itertools

import pytest

from pochta.proto.smtp.content import ChunkReader, DataReader, HeaderMeter

# SEC Consult, "SMTP Smuggling - Spoofing E-Mails Worldwide" (December 2023): end-of-data sequences
# that some servers took for <CRLF>.<CRLF>. Every pairing of line ending before and after the dot
# other than CRLF/CRLF, plus the NUL variants.
ENDINGS = [b"\r\n", b"\n", b"\r"]
SMUGGLING = [
    before + b"." + after
    for before, after in itertools.product(ENDINGS, ENDINGS)
    if (before, after) != (b"\r\n", b"\r\n")
] + [b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\n\r.\r\n", b"\r\n.\r\r\n", b"\r\n.\n\r\n"]


def read_all(pieces: list[bytes]) -> tuple[DataReader, bytes, bytes]:
    """Feed pieces; return the reader, the content it gave and what is left after the end."""
    reader = DataReader()
    buffer = bytearray()
    out = bytearray()
    for piece in pieces:
        buffer += piece
        if not reader.is_done:
            out += reader.read(buffer)
    return reader, bytes(out), bytes(buffer)


def whole_and_octets(data: bytes) -> list[tuple[DataReader, bytes, bytes]]:
    return [read_all([data]), read_all([bytes([octet]) for octet in data])]


def test_empty_message() -> None:
    for reader, content, rest in whole_and_octets(b".\r\nQUIT\r\n"):
        assert reader.is_done
        assert (content, rest, reader.size) == (b"", b"QUIT\r\n", 0)


def test_dot_unstuffing_and_end() -> None:
    data = b"Subject: x\r\n\r\n..one\r\n...\r\n.two\r\nthree.\r\n.\r\nNEXT"
    for reader, content, rest in whole_and_octets(data):
        assert content == b"Subject: x\r\n\r\n.one\r\n..\r\ntwo\r\nthree.\r\n"
        assert rest == b"NEXT"
        assert not reader.has_bare_line_ending
        assert reader.size == len(content)


def test_first_line_dot_is_unstuffed() -> None:
    for _reader, content, _rest in whole_and_octets(b"..x\r\n.\r\n"):
        assert content == b".x\r\n"


def test_reader_keeps_only_a_tiny_tail() -> None:
    reader = DataReader()
    buffer = bytearray(b"x" * 10_000 + b"\r\n.")
    reader.read(buffer)
    assert buffer == b"."
    buffer += b"\r"
    reader.read(buffer)
    assert buffer == b".\r"
    buffer += b"\n"
    reader.read(buffer)
    assert reader.is_done and buffer == b""


@pytest.mark.parametrize("sequence", SMUGGLING, ids=repr)
def test_smuggling_sequence_does_not_end_data(sequence: bytes) -> None:
    smuggled = b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nFrom: admin\r\n"
    data = b"Subject: hi\r\n\r\nbody" + sequence + smuggled + b"\r\n.\r\nQUIT\r\n"
    for reader, content, rest in whole_and_octets(data):
        assert reader.is_done
        assert rest == b"QUIT\r\n"  # ended only at the real <CRLF>.<CRLF>
        assert smuggled in content
        assert reader.has_bare_line_ending == (b"\r\n\x00." not in sequence and b".\x00" not in sequence)


@pytest.mark.parametrize("content", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\r\n", b"\n\r\n", b"a\n\r\n"], ids=repr)
def test_bare_line_endings_are_flagged(content: bytes) -> None:
    for reader, _out, _rest in whole_and_octets(content + b".\r\n"):
        assert reader.is_done and reader.has_bare_line_ending


def test_real_end_after_bare_cr_still_ends() -> None:
    for reader, content, rest in whole_and_octets(b"x\r\r\n.\r\nQUIT\r\n"):
        assert reader.is_done and reader.has_bare_line_ending
        assert (content, rest) == (b"x\r\r\n", b"QUIT\r\n")


def test_header_meter_stops_at_the_first_empty_line() -> None:
    meter = HeaderMeter()
    for octet in b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n":
        meter.count(bytes([octet]))
    assert meter.is_done and meter.size == len(b"A: 1\r\nB: 2\r\n\r\n")
    empty = HeaderMeter()
    empty.count(b"\r\nbody")
    assert empty.is_done and empty.size == 2


def test_chunk_reader_takes_exactly_its_size() -> None:
    reader = ChunkReader(5)
    buffer = bytearray(b"abc")
    assert reader.read(buffer) == b"abc"
    buffer += b"de\r\n.\r\nQUIT"
    assert reader.read(buffer) == b"de"
    assert reader.is_done and buffer == b"\r\n.\r\nQUIT"
    assert ChunkReader(0).is_done
