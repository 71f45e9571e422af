"""Authentication-Results (RFC 8601): the field we write and the forged ones we find."""

from __future__ import annotations

from pochta.mailauth.results import MethodResult, authserv_id, forged_fields, header_value


def test_header_value() -> None:
    value = header_value(
        "mx.example.test",
        [
            MethodResult(method="spf", result="pass", properties=(("smtp.mailfrom", "alice@origin.example"),)),
            MethodResult(
                method="dkim",
                result="pass",
                properties=(("header.d", "origin.example"), ("header.s", "s1"), ("header.b", "Ab/c+d=e")),
            ),
            MethodResult(
                method="dmarc", result="fail", comment="p=reject (sampled)", properties=(("header.from", "x.example"),)
            ),
            MethodResult(method="arc", result="none"),
        ],
    )
    assert value == (
        "mx.example.test; spf=pass smtp.mailfrom=alice@origin.example; "
        'dkim=pass header.d=origin.example header.s=s1 header.b="Ab/c+d=e"; '
        r"dmarc=fail (p=reject \(sampled\)) header.from=x.example; arc=none"
    )
    assert header_value("mx.example.test", []) == "mx.example.test; none"  # RFC 8601 §2.2
    assert header_value("mx", [MethodResult(method="spf", result="none", properties=(("smtp.helo", ""),))]) == (
        "mx; spf=none"
    )


def test_authserv_id() -> None:
    assert authserv_id(b" MX.Example.TEST; spf=pass") == "mx.example.test"
    assert authserv_id(b"(comment) mx.example.test 1; none") == "mx.example.test"
    assert authserv_id(b'"mx.example.test"; none') == "mx.example.test"
    assert authserv_id(b"\r\n\tmx.example.test;\r\n\tdkim=pass") == "mx.example.test"
    assert authserv_id(b"") == ""


def test_forged_fields() -> None:
    block = (
        b"Received: from a by b\r\n"
        b"Authentication-Results: mx.example.test; dkim=pass\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"authentication-results: (forged)\r\n MX.example.test;\r\n dmarc=pass\r\n"
        b"Subject: hi\r\n"
    )
    spans = forged_fields(block, "mx.example.test")
    kept = b"".join(
        block[a:b]
        for a, b in zip([0] + [end for _, end in spans], [start for start, _ in spans] + [len(block)], strict=True)
    )
    assert kept == (b"Received: from a by b\r\nAuthentication-Results: other.example; spf=fail\r\nSubject: hi\r\n")
    assert forged_fields(b"Subject: hi\r\n", "mx.example.test") == []
