"""MTA-STS policy parsing, host matching, and fetching over real HTTPS from a server the test starts."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pochta.dns import DnsResolver
from pochta.outbound.mtasts import Mode, Policy, PolicyCache, parse_policy, parse_record

from ..certs import certificates
from ..dnsserver import serving

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\nmx: *.backup.remote.test\r\nmax_age: 86400\r\n"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_records() -> None:
    assert parse_record([b"v=STSv1; id=20261127T1"]) == "20261127T1"
    assert parse_record([b"v=STSv1;id=abc;"]) == "abc"
    assert parse_record([b"v=spf1 -all"]) is None
    assert parse_record([b"v=STSv1; id=a", b"v=STSv1; id=b"]) is None  # RFC 8461 §3.1: exactly one
    assert parse_record([b"v=STSv1; id=not-valid!"]) is None
    assert parse_record([]) is None


def test_policies() -> None:
    policy = parse_policy(POLICY)
    assert policy == Policy(mode=Mode.ENFORCE, mx=("mx.remote.test", "*.backup.remote.test"), max_age=86400)
    assert policy.allows("mx.remote.test") and policy.allows("MX.Remote.Test.")
    assert policy.allows("a.backup.remote.test")
    assert not policy.allows("a.b.backup.remote.test")  # the wildcard is one label (RFC 8461 §4.1)
    assert not policy.allows("backup.remote.test") and not policy.allows("evil.test")
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n") == Policy(mode=Mode.NONE, mx=(), max_age=0)
    for broken in (
        "mode: enforce\nmx: a\nmax_age: 1\n",  # no version
        "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n",
        "garbage",
    ):
        assert parse_policy(broken) is None, broken


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[tuple[int, Path, dict[str, str]]]:
    ca, cert, key = certificates(tmp_path, "mta-sts.remote.test")
    with https_policy(cert, key, POLICY) as (port, served):
        yield port, ca, served


@contextmanager
def https_policy(cert: Path, key: Path, policy: str) -> Iterator[tuple[int, dict[str, str]]]:
    """An HTTPS server on 127.0.0.1 serving `policy` at /.well-known/mta-sts.txt (changeable)."""
    served = {"/.well-known/mta-sts.txt": policy}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], served
    finally:
        server.shutdown()
        server.server_close()


async def test_fetch_and_cache_over_verified_https(policy_server: tuple[int, Path, dict[str, str]]) -> None:
    port, ca, served = policy_server
    zone = {
        "_mta-sts.remote.test.": {"TXT": ['"v=STSv1; id=one"']},
        "mta-sts.remote.test.": {"A": ["127.0.0.1"]},
    }
    async with serving(lambda: zone) as nameserver:
        resolver = DnsResolver(nameservers=[nameserver], timeout=2)
        context = ssl.create_default_context(cafile=str(ca))
        clock = [NOW]
        cache = PolicyCache(
            txt=resolver.txt, addresses=resolver.addresses, context=context, now=lambda: clock[0], port=port
        )
        policy = await cache.policy("remote.test")
        assert policy is not None and policy.mode is Mode.ENFORCE
        served["/.well-known/mta-sts.txt"] = "garbage"
        assert await cache.policy("remote.test") == policy  # same id: no new fetch
        zone["_mta-sts.remote.test."] = {"TXT": ['"v=STSv1; id=two"']}
        assert await cache.policy("remote.test") == policy  # new id, broken policy: the cached one holds
        clock[0] = NOW + dt.timedelta(days=2)
        assert await cache.policy("remote.test") is None  # expired and nothing valid to replace it
        assert await cache.policy("other.test") is None  # no record, no policy
        served["/.well-known/mta-sts.txt"] = POLICY
        untrusting = PolicyCache(
            txt=resolver.txt,
            addresses=resolver.addresses,
            context=ssl.create_default_context(),
            now=lambda: NOW,
            port=port,
        )
        assert await untrusting.policy("remote.test") is None  # certificate not verified: no policy
