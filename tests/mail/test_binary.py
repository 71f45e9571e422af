"""Parts holding NUL are re-encoded as base64; everything else keeps its exact octets."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from pochta.imapd.content import decode_body, transfer_encoding
from pochta.mail.binary import encode_nul_parts
from pochta.mail.mime import find_part, parse

CLEAN = b"Content-Type: text/plain\r\n\r\nhello\r\n"
BINARY = b"\x00\x01\xff binary\r\n\x00"


def multipart(payload: bytes) -> bytes:
    return (
        b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n"
        b"--XX\r\n" + CLEAN + b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n  (folded comment)\r\n\r\n" + payload + b"\r\n--XX--\r\nepilogue\r\n"
    )


def test_without_nul_nothing_changes() -> None:
    assert encode_nul_parts(multipart(b"plain bytes \xff")) is None


def test_only_the_part_with_nul_is_encoded() -> None:
    original = multipart(BINARY)
    encoded = encode_nul_parts(original)
    assert encoded is not None and b"\x00" not in encoded
    assert encoded.startswith(original[: original.index(b"--XX\r\nContent-Type: application")])
    assert encoded.endswith(b"\r\n--XX--\r\nepilogue\r\n")
    root = parse(encoded)
    part = find_part(root, (2,))
    assert part is not None
    header = encoded[part.start : part.body_start]
    assert transfer_encoding(header) == b"base64" and b"folded" not in header
    assert decode_body(encoded[part.body_start : part.end], b"base64") == BINARY


def test_a_single_part_message_is_encoded_whole() -> None:
    message = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\r\n"
    encoded = encode_nul_parts(message)
    assert encoded == (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"\x00-\xe4\r\n")
        + b"\r\n"
    )


@given(st.binary(max_size=300))
def test_any_payload_round_trips(payload: bytes) -> None:
    original = multipart(payload)
    encoded = encode_nul_parts(original)
    if b"\x00" not in payload:
        assert encoded is None
        return
    assert encoded is not None
    part = find_part(parse(encoded), (2,))
    assert part is not None
    assert decode_body(encoded[part.body_start : part.end], b"base64") == payload
