import pytest
from hypothesis import given
from hypothesis import strategies as st

from pochta.proto.imap.utf7 import Utf7Error, decode_mailbox, encode_mailbox


def test_rfc3501_example() -> None:
    # RFC 3501 §5.1.3
    assert decode_mailbox("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert encode_mailbox("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


@pytest.mark.parametrize(
    ("name", "encoded"),
    [("INBOX", "INBOX"), ("a&b", "a&-b"), ("Entwürfe", "Entw&APw-rfe"), ("😀", "&2D3eAA-"), ("", "")],
)
def test_known_encodings(name: str, encoded: str) -> None:
    assert encode_mailbox(name) == encoded
    assert decode_mailbox(encoded) == name


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # unterminated
        "&AGE-",  # an encoded printable "a"
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent encoded runs
        "&U,BTF-",  # truncated base64
        "&AP-",  # non-zero padding bits
        "&2D0-",  # lone surrogate
        "Entwürfe",  # raw 8-bit
        "a\tb",  # control character
        "&Jjo!",
        "&A/w-",  # "/" instead of ","
    ],
)
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(Utf7Error):
        decode_mailbox(bad)


@given(st.text())
def test_round_trip(name: str) -> None:
    try:
        name.encode("utf-16-be")
    except UnicodeEncodeError:
        return  # lone surrogates are not names
    encoded = encode_mailbox(name)
    assert encoded.isascii()
    assert decode_mailbox(encoded) == name
