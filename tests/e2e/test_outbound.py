"""Sending to another server: submission on one Pochta, delivery to a second one found through MX
records that a real DNS server process (tests/dnsserver.py) serves on 127.0.0.1; DKIM checked with
the key published there; a remote that is down is retried; a remote 550 comes back as a DSN."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from pathlib import Path

import dkim
import dns.message
import dns.query
import dns.rdatatype
import pytest

from pochta.mailauth.dkim import Algorithm, generate
from pochta.store.api import DkimKey

from ..smtpd.harness import CLOCK, PASSWORD, Mx, running_mx

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    return tmp_path / "zone.json"


@pytest.fixture
def nameserver(zone_file: Path) -> Iterator[str]:
    zone_file.write_text("{}")
    with subprocess.Popen(
        [sys.executable, str(TESTS / "dnsserver.py"), str(zone_file)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            yield address
        finally:
            process.kill()
            process.stdout.close()


async def _until(condition: object, *, seconds: float = 15) -> None:
    for _ in range(int(seconds * 20)):
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path / "remote", hostname="mx.remote.test") as server:
        await server.add_user("bob@remote.test")
        yield server


async def _submit(sender: Mx, recipients: list[str], content: bytes) -> list[str]:
    client = await sender.connect("submissions", tls=True)
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO laptop")
    credentials = base64.b64encode(f"\0alice@example.test\0{PASSWORD}".encode()).decode()
    assert (await client.command(f"AUTH PLAIN {credentials}"))[0].startswith("235")
    assert (await client.command("MAIL FROM:<alice@example.test>"))[0].startswith("250")
    for recipient in recipients:
        assert (await client.command(f"RCPT TO:<{recipient}>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(content + b".\r\n")
    reply = await client.reply()
    await client.close()
    return reply


def _publish(zone_file: Path, zone: dict[str, dict[str, list[str]]]) -> None:
    zone_file.write_text(json.dumps(zone))


async def test_mail_goes_out_signed_waits_for_a_down_remote_and_bounces_a_550(
    tmp_path: Path, nameserver: str, zone_file: Path, remote: Mx
) -> None:
    key = generate("example.test", "s1", Algorithm.ED25519)
    _publish(
        zone_file,
        {
            "remote.test.": {"MX": ["10 mx.remote.test."]},
            "mx.remote.test.": {"A": ["127.0.0.1"]},
            f"{key.dns_name}.": {"TXT": [f'"{key.dns_record}"']},
        },
    )
    async with running_mx(
        tmp_path / "sender",
        listen={"smtp": [], "submissions": ["127.0.0.1:0"]},
        outbound={"port": remote.port},
        dns={"nameservers": [nameserver], "timeout": 2.0},
    ) as sender:
        await sender.add_user("alice@example.test")
        await sender.store.add_dkim_key(
            DkimKey(
                domain=key.domain,
                selector=key.selector,
                algorithm=key.algorithm.value,
                private_key=key.private_key,
                public_key=key.public_key,
                created=CLOCK,
            )
        )
        content = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: over the wire\r\n\r\nHello Bob.\r\n"
        assert (await _submit(sender, ["bob@remote.test"], content))[0].startswith("250")

        async def arrived() -> bool:
            return len(await remote.inbox("bob@remote.test")) == 1

        await _until(arrived)

        async def emptied() -> bool:  # delivered, so gone from the queue (recorded just after the 250)
            return await sender.store.queue_entries() == []

        await _until(emptied)
        (received,) = await remote.inbox_bytes("bob@remote.test")
        assert received.startswith(b"Return-Path: <alice@example.test>\r\nReceived: from mx.example.test")
        assert b"with ESMTPS" in received  # STARTTLS on the way

        def txt(name: bytes, timeout: int = 5) -> bytes | None:
            host, port = nameserver.rsplit(":", 1)
            query = dns.message.make_query(name.decode(), dns.rdatatype.TXT)
            answer = dns.query.udp(query, host, port=int(port), timeout=timeout)
            return b"".join(answer.answer[0][0].strings) if answer.answer else None

        assert dkim.verify(received, dnsfunc=txt)  # the receiving side's check, against real DNS

    # the remote is down: the message waits in the queue, then goes once the remote is back
    remote_port = remote.port
    await remote.server.stop()
    async with running_mx(
        tmp_path / "sender",
        listen={"smtp": [], "submissions": ["127.0.0.1:0"]},
        outbound={"port": remote_port},
        dns={"nameservers": [nameserver], "timeout": 2.0},
    ) as sender:
        content = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: later\r\n\r\nStill there?\r\n"
        assert (await _submit(sender, ["bob@remote.test"], content))[0].startswith("250")

        async def deferred() -> bool:
            entries = await sender.store.queue_entries()
            return len(entries) == 1 and entries[0].attempts == 1

        await _until(deferred)
        (entry,) = await sender.store.queue_entries()
        assert entry.last_error is not None and "cannot connect" in entry.last_error
        async with running_mx(
            tmp_path / "remote", hostname="mx.remote.test", listen={"smtp": [f"127.0.0.1:{remote_port}"]}
        ) as back:
            await sender.store.retry_now(entry.id, now=CLOCK)  # what `pochta queue retry ID` does
            assert sender.server.runner is not None
            sender.server.runner.wake()

            async def arrived_later() -> bool:
                return len(await back.inbox("bob@remote.test")) == 2

            await _until(arrived_later)
            await _until(emptied)

            # a recipient the remote refuses: the sender gets an RFC 3464 report in her INBOX
            content = b"From: alice@example.test\r\nTo: nobody@remote.test\r\nSubject: to nobody\r\n\r\nx\r\n"
            assert (await _submit(sender, ["nobody@remote.test"], content))[0].startswith("250")

            async def bounced() -> bool:
                return len(await sender.inbox("alice@example.test")) == 1

            await _until(bounced)
            (report,) = await sender.inbox_bytes("alice@example.test")
            parsed = message_from_bytes(report)
            assert parsed.get_content_type() == "multipart/report"
            assert parsed.get_param("report-type") == "delivery-status"
            status = parsed.get_payload()[1].get_payload()  # type: ignore[index, union-attr]
            fields = {k.lower(): v for part in status for k, v in part.items()}  # type: ignore[union-attr]
            assert fields["action"] == "failed" and fields["status"] == "5.1.1"
            assert fields["final-recipient"].lower() == "rfc822; nobody@remote.test"
            assert "550" in fields["diagnostic-code"]

            async def recorded() -> bool:  # the notice is made durable first, then the attempt recorded
                return await sender.store.queue_entries() == []

            await _until(recorded)


async def test_a_smarthost_takes_everything_over_tls_with_auth(tmp_path: Path) -> None:
    async with running_mx(
        tmp_path / "relay", hostname="relay.example.test", listen={"smtp": [], "submissions": ["127.0.0.1:0"]}
    ) as relay:
        await relay.add_user("alice@example.test")
        await relay.add_user("bob@remote.test")
        password_file = tmp_path / "relay-password"
        password_file.write_text(PASSWORD + "\n")
        async with running_mx(
            tmp_path / "sender",
            listen={"smtp": [], "submissions": ["127.0.0.1:0"]},
            outbound={
                "smarthost": f"127.0.0.1:{relay.server.ports('submissions')[0]}",
                "smarthost_tls": "implicit",
                "smarthost_user": "alice@example.test",
                "smarthost_password_file": str(password_file),
            },
        ) as sender:
            await sender.add_user("alice@example.test")
            content = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: via relay\r\n\r\nrelayed\r\n"
            assert (await _submit(sender, ["bob@remote.test"], content))[0].startswith("250")

            async def relayed() -> bool:
                return len(await relay.inbox("bob@remote.test")) == 1

            await _until(relayed)  # no DNS asked: the harness's resolver answers nothing
            (received,) = await relay.inbox_bytes("bob@remote.test")
            assert b"with ESMTPSA" in received and received.endswith(b"\r\n\r\nrelayed\r\n")


async def test_mta_sts_enforce_needs_a_verified_policy_host(tmp_path: Path, nameserver: str, zone_file: Path) -> None:
    from ..certs import certificates
    from ..outbound.test_mtasts import https_policy

    ca, cert, key = certificates(tmp_path / "pki", "mx.remote.test", "mta-sts.remote.test")
    policy = "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 86400\n"
    with https_policy(cert, key, policy) as (policy_port, served):
        async with running_mx(
            tmp_path / "remote", hostname="mx.remote.test", tls={"cert": str(cert), "key": str(key)}
        ) as remote:
            await remote.add_user("bob@remote.test")
            _publish(
                zone_file,
                {
                    "remote.test.": {"MX": ["10 mx.remote.test."]},
                    "mx.remote.test.": {"A": ["127.0.0.1"]},
                    "_mta-sts.remote.test.": {"TXT": ['"v=STSv1; id=1"']},
                    "mta-sts.remote.test.": {"A": ["127.0.0.1"]},
                },
            )
            async with running_mx(
                tmp_path / "sender",
                listen={"smtp": [], "submissions": ["127.0.0.1:0"]},
                outbound={"port": remote.port, "ca_file": str(ca), "mta_sts_port": policy_port},
                dns={"nameservers": [nameserver], "timeout": 2.0},
            ) as sender:
                await sender.add_user("alice@example.test")
                content = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: sts\r\n\r\nverified\r\n"
                assert (await _submit(sender, ["bob@remote.test"], content))[0].startswith("250")

                async def arrived() -> bool:
                    return len(await remote.inbox("bob@remote.test")) == 1

                await _until(arrived)  # the remote's certificate verified against the policy's CA

                # the policy changes (new id) to name another host: nothing goes to mx.remote.test
                served["/.well-known/mta-sts.txt"] = policy.replace("mx.remote.test", "mx.elsewhere.test")
                _publish(
                    zone_file,
                    {
                        "remote.test.": {"MX": ["10 mx.remote.test."]},
                        "mx.remote.test.": {"A": ["127.0.0.1"]},
                        "_mta-sts.remote.test.": {"TXT": ['"v=STSv1; id=2"']},
                        "mta-sts.remote.test.": {"A": ["127.0.0.1"]},
                    },
                )
                assert (await _submit(sender, ["bob@remote.test"], content))[0].startswith("250")

                async def refused_by_policy() -> bool:
                    entries = await sender.store.queue_entries()
                    return len(entries) == 1 and entries[0].attempts == 1

                await _until(refused_by_policy)
                (entry,) = await sender.store.queue_entries()
                assert entry.last_error is not None and "4.7.5" in entry.last_error
                assert len(await remote.inbox("bob@remote.test")) == 1

                # the policy names the host again, but the host now shows a certificate nobody signed
                port = remote.port
                await remote.server.stop()
                async with running_mx(
                    tmp_path / "remote", hostname="mx.remote.test", listen={"smtp": [f"127.0.0.1:{port}"]}
                ) as impostor:
                    served["/.well-known/mta-sts.txt"] = policy
                    _publish(
                        zone_file,
                        {
                            "remote.test.": {"MX": ["10 mx.remote.test."]},
                            "mx.remote.test.": {"A": ["127.0.0.1"]},
                            "_mta-sts.remote.test.": {"TXT": ['"v=STSv1; id=3"']},
                            "mta-sts.remote.test.": {"A": ["127.0.0.1"]},
                        },
                    )
                    await sender.store.retry_now(entry.id, now=CLOCK)
                    assert sender.server.runner is not None
                    sender.server.runner.wake()

                    async def refused_unverified() -> bool:
                        entries = await sender.store.queue_entries()
                        return len(entries) == 1 and entries[0].attempts == 2

                    await _until(refused_unverified)
                    (entry,) = await sender.store.queue_entries()
                    assert entry.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in entry.last_error
                    assert len(await impostor.inbox("bob@remote.test")) == 1  # still only the first one
