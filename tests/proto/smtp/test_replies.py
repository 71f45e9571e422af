import pytest

from pochta.proto.smtp import Reply, replies


def test_single_line_with_enhanced_status() -> None:
    assert Reply(code=250, status="2.1.0", text="sender ok").to_bytes() == b"250 2.1.0 sender ok\r\n"


def test_multi_line_uses_dash_on_all_but_the_last() -> None:
    reply = Reply(code=250, text=("mx.example.test", "PIPELINING", "SIZE 100"))
    assert reply.to_bytes() == b"250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n"


def test_multi_line_repeats_the_status_code_on_each_line() -> None:
    reply = Reply(code=550, status="5.7.1", text=("rejected", "see policy"))
    assert reply.to_bytes() == b"550-5.7.1 rejected\r\n550 5.7.1 see policy\r\n"


def test_empty_auth_challenge_is_334_space() -> None:
    assert replies.auth_challenge(b"").to_bytes() == b"334 \r\n"
    assert replies.auth_challenge(b"Username:").to_bytes() == b"334 VXNlcm5hbWU6\r\n"


def test_single_line_without_status_and_one_line_tuples() -> None:
    assert Reply(code=220, text="mx.example.test ESMTP Pochta").to_bytes() == b"220 mx.example.test ESMTP Pochta\r\n"
    assert Reply(code=250, status="2.0.0", text=("OK",)).to_bytes() == b"250 2.0.0 OK\r\n"
    assert Reply(code=250, text="ok \u00e9").to_bytes() == "250 ok \u00e9\r\n".encode()


def test_status_without_text() -> None:
    assert Reply(code=250, status="2.0.0").to_bytes() == b"250 2.0.0\r\n"


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (199, None, "x"),
        (600, None, "x"),
        (250, "5.0.0", "class differs from the code"),
        (250, "2.0", "too short"),
        (250, None, "line\r\nbreak"),
        (250, None, ("ok", "bare\nlf")),
    ],
)
def test_bad_replies_are_our_mistake(code: int, status: str | None, text: str | tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Reply(code=code, status=status, text=text)
