"""The spam check in the MX, over real sockets: headers and facts, Junk per user, 550 for the worst."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pochta.filters.pipeline import Inbound, Verdict
from pochta.filters.spam import rules
from pochta.filters.spam.models import Example
from pochta.filters.spam.tokens import features
from pochta.store.api import GLOBAL_MODEL, SpamListEntry

from ...dnsserver import serving
from ...smtpd.harness import Mx, running_mx
from .samples import ham, message, spam


@dataclass
class Recorder:
    """Runs after the spam check and keeps the facts it left (what Sieve will read)."""

    name: str = "recorder"
    facts: list[dict[str, str]] = field(default_factory=list)

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        self.facts.append(dict(facts))
        return Verdict()


def _send(port: int, recipients: Sequence[str], data: bytes, sender: str = "sender@remote.example") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, list(recipients), data)


async def send(mx: Mx, recipients: Sequence[str], data: bytes, sender: str = "sender@remote.example") -> None:
    await asyncio.to_thread(_send, mx.port, recipients, data, sender)


async def stored(mx: Mx, address: str, mailbox: str) -> list[bytes]:
    account = await mx.store.get_account(address)
    assert account is not None
    found = await mx.store.get_mailbox(account.id, mailbox)
    assert found is not None
    return [await mx.blobs.read(m.blob_id) for m in await mx.store.messages(found.id)]


def header(data: bytes, name: str) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(name.lower().encode() + b":"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(f"no {name} in {data[:300]!r}")


async def train(mx: Mx, count: int = 15) -> None:
    models = mx.server.spam_models
    assert models is not None
    examples = [Example.of(features(spam(n)), digest=f"s{n}", is_spam=True) for n in range(count)]
    examples += [Example.of(features(ham(n)), digest=f"h{n}", is_spam=False) for n in range(count)]
    await models.learn(GLOBAL_MODEL, examples)


async def test_ham_to_inbox_spam_to_junk_with_headers_and_facts(tmp_path: Path) -> None:
    recorder = Recorder()
    async with running_mx(tmp_path, checks=[recorder], spam={"enabled": True}) as mx:
        await mx.add_user("alice@example.test")
        await train(mx)
        await send(mx, ["alice@example.test"], ham(500))
        await send(mx, ["alice@example.test"], spam(500))
        (inbox,) = await stored(mx, "alice@example.test", "INBOX")
        (junk,) = await stored(mx, "alice@example.test", "Junk")
    assert header(inbox, "X-Spam-Status").startswith("No, score=-") and "tests=BAYES_00" in header(
        inbox, "X-Spam-Status"
    )
    assert float(header(inbox, "X-Spam-Score")) <= -9
    assert header(junk, "X-Spam-Status").startswith("Yes, score=")
    assert float(header(junk, "X-Spam-Score")) >= 5
    # the headers follow the trace header, before the message's own
    assert inbox.index(b"Received:") < inbox.index(b"X-Spam-Status:") < inbox.index(b"From: Colleague")
    assert recorder.facts[0]["spamtest"] == "1" and float(recorder.facts[0]["spam.score"]) <= -9
    assert 5 <= int(recorder.facts[1]["spamtest"]) <= 7  # 5 to 10 points


async def test_a_senders_own_spam_verdict_is_dropped(tmp_path: Path) -> None:
    forged = b"X-Spam-Status: No, score=-100.0\r\nX-Spam-Score: -100\r\nX-Spam-Flag: NO\r\n"
    async with running_mx(tmp_path, spam={"enabled": True}) as mx:
        await mx.add_user("alice@example.test")
        await train(mx)
        await send(mx, ["alice@example.test"], forged + spam(501))
        (junk,) = await stored(mx, "alice@example.test", "Junk")
    assert junk.count(b"X-Spam-Status:") == 1 and header(junk, "X-Spam-Status").startswith("Yes")
    assert b"-100" not in junk and b"X-Spam-Flag" not in junk


async def test_gtube_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    async with running_mx(tmp_path, spam={"enabled": True}) as mx:
        await mx.add_user("alice@example.test")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await send(mx, ["alice@example.test"], message(f"hello {rules.GTUBE}"))
        assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.1")
        assert await stored(mx, "alice@example.test", "INBOX") == []
        assert await stored(mx, "alice@example.test", "Junk") == []


async def test_each_recipient_gets_their_own_verdict(tmp_path: Path) -> None:
    async with running_mx(tmp_path, spam={"enabled": True}) as mx:
        alice = await mx.add_user("alice@example.test")
        await mx.add_user("bob@example.test")
        await train(mx)
        await mx.store.add_spam_list_entry(SpamListEntry(account_id=alice, pattern="@offers.example", is_block=False))
        await send(mx, ["alice@example.test", "bob@example.test"], spam(600))
        assert len(await stored(mx, "alice@example.test", "INBOX")) == 1  # alice allows the sender
        assert len(await stored(mx, "bob@example.test", "Junk")) == 1
        await mx.store.add_spam_list_entry(
            SpamListEntry(account_id=GLOBAL_MODEL, pattern="@work.example", is_block=True)
        )
        with pytest.raises(smtplib.SMTPDataError):  # blocked server-wide: over the reject threshold
            await send(mx, ["bob@example.test"], ham(601))
        with pytest.raises(smtplib.SMTPDataError):  # refused only when every recipient's score says so
            await send(mx, ["alice@example.test", "bob@example.test"], ham(602))
        await mx.store.add_spam_list_entry(SpamListEntry(account_id=alice, pattern="@work.example", is_block=False))
        await send(mx, ["alice@example.test", "bob@example.test"], ham(603))
        assert len(await stored(mx, "alice@example.test", "INBOX")) == 2
        assert len(await stored(mx, "bob@example.test", "Junk")) == 2


async def test_linked_domains_on_a_uribl(tmp_path: Path) -> None:
    zone = {"spammer.example.uribl.test.": {"A": ["127.0.0.2"]}}
    async with (
        serving(zone) as nameserver,
        running_mx(
            tmp_path, spam={"enabled": True, "uribl": ["uribl.test"]}, dns={"nameservers": [nameserver], "timeout": 2.0}
        ) as mx,
    ):
        await mx.add_user("alice@example.test")
        await send(mx, ["alice@example.test"], message("see http://www.spammer.example/buy now"))
        await send(mx, ["alice@example.test"], message("see http://www.fine.example/read now", number=2))
        listed, fine = await stored(mx, "alice@example.test", "INBOX")
    assert "URIBL_BLOCKED" in header(listed, "X-Spam-Status")
    assert header(fine, "X-Spam-Status") == "No, score=0.0 required=5.0 tests=none"


async def test_sieve_scripts_see_spamtest(tmp_path: Path) -> None:
    script = (
        'require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox"];\n'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "3" { fileinto :create "Suspicious"; }\n'
    )
    async with running_mx(tmp_path, spam={"enabled": True}) as mx:
        alice = await mx.add_user("alice@example.test")
        await mx.store.put_sieve_script(alice, "main", script)
        await mx.store.activate_sieve_script(alice, "main")
        await send(mx, ["alice@example.test"], message("a plain note"))
        # no Date, no Message-ID, HTML only: 2.5 points, spamtest 3; not enough for Junk
        await send(
            mx,
            ["alice@example.test"],
            b"From: x@y.example\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n",
        )
        (plain,) = await stored(mx, "alice@example.test", "INBOX")
        (odd,) = await stored(mx, "alice@example.test", "Suspicious")
    assert b"a plain note" in plain
    assert header(odd, "X-Spam-Status") == "No, score=2.5 required=5.0 tests=HTML_ONLY,MISSING_DATE,MISSING_MID"
