"""The MX's sender-authentication check per message: SPF + DKIM + DMARC + ARC with a real UDP DNS server
on 127.0.0.1 (tests/dnsserver.py), next to the floor — dkimpy verifying the same signature alone with
the key in hand (no DNS, no SPF/DMARC).

Run by hand:  .venv/bin/python bench/auth_check.py [--messages 500] [--size 4096]
Prints messages/s and ms per message for both, at the given body size and at 1 MiB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dkim
import uvloop

from pochta.dns import DnsResolver
from pochta.filters.authcheck import AuthCheck, AuthSettings
from pochta.filters.pipeline import Inbound
from pochta.mail.envelope import Envelope
from pochta.mailauth.dkim import Algorithm, generate, sign

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.dnsserver import serving
from tests.mailauth.table import to_zone


async def run(messages: int, size: int) -> None:
    key = generate("origin.example", "s1", Algorithm.RSA)
    table = {
        "origin.example.": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        key.dns_name + ".": {"TXT": [key.dns_record]},
        "_dmarc.origin.example.": {"TXT": ["v=DMARC1; p=reject"]},
    }
    async with serving(to_zone(table)) as nameserver:
        check = AuthCheck(DnsResolver(nameservers=[nameserver], timeout=2), AuthSettings(hostname="mx.bench"))
        for body_size in (size, 1 << 20):
            body = (b"x" * 76 + b"\r\n") * (body_size // 78)
            content = b"From: joe@origin.example\r\nTo: a@b.example\r\nSubject: bench\r\n\r\n" + body
            content = sign(content, [key]) + content
            message = Inbound(
                id="b",
                content=content,
                envelope=Envelope(mail_from="joe@origin.example"),
                remote_ip="127.0.0.1",
                helo="mail.origin.example",
                is_tls=False,
            )
            verdict = await check.check(message, {})
            assert verdict.facts["dmarc"] == "pass", verdict
            count = messages if body_size == size else max(messages // 20, 5)
            started = time.perf_counter()
            for _ in range(count):
                await check.check(message, {})
            ours = (time.perf_counter() - started) / count

            record = key.dns_record.encode()
            started = time.perf_counter()
            for _ in range(count):
                assert dkim.verify(content, dnsfunc=lambda name, timeout=5, record=record: record)
            floor = (time.perf_counter() - started) / count
            print(
                f"body {len(body):>8} B: pochta auth check {1 / ours:8.0f} msg/s ({ours * 1000:6.2f} ms)   "
                f"dkimpy verify alone {1 / floor:8.0f} msg/s ({floor * 1000:6.2f} ms)   ratio {ours / floor:.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    uvloop.run(run(args.messages, args.size))


if __name__ == "__main__":
    main()
