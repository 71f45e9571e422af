"""Any record text or header value from the internet gives a result, never an exception."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pochta.mailauth.dmarc import from_domains
from pochta.mailauth.results import authserv_id, forged_fields
from pochta.mailauth.spf import SpfResult, check_host

from .table import TableResolver

_SPF_WORDS = st.sampled_from(
    [
        "v=spf1",
        "a",
        "mx",
        "ptr",
        "-all",
        "~all",
        "include:",
        "exists:",
        "ip4:",
        "ip6:",
        "redirect=",
        "exp=",
        "/",
        "%{",
        "}",
        "%",
        "d",
        "l",
        "i",
        "r",
        "24",
        "//",
        ":",
        ".",
        "example.com",
        "x.example",
        "=",
        "+",
        "?",
        " ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SPF_WORDS, max_size=12).map("".join), st.text(max_size=20))
def test_any_spf_record_gives_a_result(record: str, noise: str) -> None:
    resolver = TableResolver(
        {
            "example.com.": {"TXT": ["v=spf1 " + record, "other"], "A": ["192.0.2.1"], "MX": ["10 x.example."]},
            "x.example.": {"TXT": [record + noise], "A": ["192.0.2.2"]},
        }
    )
    outcome = asyncio.run(check_host(resolver, ip="192.0.2.3", domain="example.com", sender="a@example.com"))
    assert isinstance(outcome.result, SpfResult)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_header_value_is_read(value: bytes) -> None:
    authserv_id(value)
    forged_fields(b"Authentication-Results:" + value + b"\r\n", "mx.example.test")
    from_domains(b"From:" + value + b"\r\n")
