"""The check pipeline: order, the first final verdict, per-user Junk, added headers; and its seam in the MX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pochta.filters.pipeline import Action, Inbound, Pipeline, Verdict
from pochta.mail.envelope import Envelope
from pochta.proto.smtp.replies import Reply
from pochta.store.api import SpecialUse

from ..smtpd.harness import running_mx

MESSAGE = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHi Alice.\r\n"


@dataclass
class Scripted:
    """A check with a fixed verdict that records what it saw (the real checks have their own tests)."""

    name: str
    verdict: Verdict | None = None
    seen: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        self.seen.append((bytes(message.content[:]), dict(facts)))
        if self.verdict is None:
            raise RuntimeError("boom")
        return self.verdict


def inbound(content: bytes = MESSAGE) -> Inbound:
    return Inbound(
        id="t1",
        content=content,
        envelope=Envelope(mail_from="", recipients=()),
        remote_ip="192.0.2.1",
        helo="x",
        is_tls=False,
    )


async def test_checks_run_in_order_and_see_earlier_facts() -> None:
    first = Scripted("first", Verdict(headers=(("X-First", "1"),), facts={"spf": "pass"}))
    second = Scripted("second", Verdict(headers=(("X-Second", "2"),), facts={"spam": "1.5"}))
    outcome = await Pipeline([first, second]).run(inbound())
    assert outcome.action is Action.ACCEPT and outcome.reply is None
    assert outcome.header_block() == b"X-First: 1\r\nX-Second: 2\r\n"
    assert second.seen[0][1] == {"spf": "pass"}
    assert outcome.facts == {"spf": "pass", "spam": "1.5"}


async def test_first_reject_wins_and_later_checks_do_not_run() -> None:
    reply = Reply(code=554, status="5.7.1", text="infected")
    later = Scripted("later", Verdict())
    outcome = await Pipeline(
        [
            Scripted("junk", Verdict(action=Action.JUNK)),
            Scripted("virus", Verdict(action=Action.REJECT, reply=reply)),
            later,
        ]
    ).run(inbound())
    assert outcome.action is Action.REJECT and outcome.reply == reply
    assert later.seen == []


async def test_a_failing_check_is_a_tempfail_so_nothing_is_lost() -> None:
    outcome = await Pipeline([Scripted("broken")]).run(inbound())
    assert outcome.action is Action.TEMPFAIL
    assert outcome.reply is not None and outcome.reply.code == 451


async def test_junk_is_not_final_and_per_user_junk_accumulates() -> None:
    outcome = await Pipeline(
        [Scripted("a", Verdict(junk_accounts=frozenset({1}))), Scripted("b", Verdict(junk_accounts=frozenset({2})))]
    ).run(inbound())
    assert outcome.action is Action.ACCEPT and outcome.junk_accounts == {1, 2}


async def test_empty_pipeline_is_false() -> None:
    assert not Pipeline()
    assert Pipeline([Scripted("a", Verdict())])


SEND = (
    "EHLO c\r\nMAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
)


@pytest.mark.parametrize("size", [100, 300_000])  # in memory, and spilled to disk (mapped)
async def test_mx_adds_headers_after_trace_and_files_junk_per_user(tmp_path: Path, size: int) -> None:
    body = b"x" * 70 + b"\r\n"
    message = MESSAGE + body * (size // len(body))
    check = Scripted("scripted", Verdict(headers=(("Authentication-Results", "mx.example.test; spf=pass"),)))
    async with running_mx(tmp_path, checks=[check]) as mx:
        await mx.add_user("alice@example.test")
        bob = await mx.add_user("bob@example.test")
        check.verdict = Verdict(
            headers=(("Authentication-Results", "mx.example.test; spf=pass"),), junk_accounts=frozenset({bob})
        )
        client = await mx.connect()
        await client.reply()
        for command in SEND.splitlines():
            await client.command(command)
        await client.send(message + b".\r\n")
        assert (await client.reply())[0].startswith("250 ")
        seen, _ = check.seen[0]
        assert seen.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: ") and seen.endswith(message)
        (stored,) = await mx.inbox_bytes("alice@example.test")
        trace = seen[: len(seen) - len(message)]
        assert stored == trace + b"Authentication-Results: mx.example.test; spf=pass\r\n" + message
        assert await mx.inbox("bob@example.test") == []
        account = await mx.store.get_account("bob@example.test")
        assert account is not None
        junk = [m for m in await mx.store.list_mailboxes(account.id) if m.special_use is SpecialUse.JUNK]
        (copy,) = await mx.store.messages(junk[0].id, with_structure=True)
        assert await mx.blobs.read(copy.blob_id) == stored


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Verdict(action=Action.REJECT, reply=Reply(code=554, status="5.7.1", text="infected: Eicar")), "554 5.7.1"),
        (Verdict(action=Action.TEMPFAIL, reply=Reply(code=451, status="4.7.1", text="scanner down")), "451 4.7.1"),
        (None, "451 4.3.0"),
    ],
)
async def test_mx_reject_and_tempfail_store_nothing(tmp_path: Path, verdict: Verdict | None, expected: str) -> None:
    async with running_mx(tmp_path, checks=[Scripted("scripted", verdict)]) as mx:
        await mx.add_user("alice@example.test")
        await mx.add_user("bob@example.test")
        client = await mx.connect()
        await client.reply()
        for command in SEND.splitlines():
            await client.command(command)
        await client.send(MESSAGE + b".\r\n")
        assert (await client.reply())[0].startswith(expected)
        assert await mx.inbox("alice@example.test") == []
        assert (await client.command("NOOP"))[0].startswith("250")  # the session goes on


async def test_mx_refusing_a_large_message_leaves_no_blob(tmp_path: Path) -> None:
    """A message that spilled to disk is checked from its spill file: refused, nothing stays on disk."""
    refuse = Verdict(action=Action.REJECT, reply=Reply(code=554, status="5.7.1", text="infected: Eicar"))
    check = Scripted("scripted", refuse)
    async with running_mx(tmp_path, checks=[check]) as mx:
        await mx.add_user("alice@example.test")
        await mx.add_user("bob@example.test")
        client = await mx.connect()
        await client.reply()
        for command in SEND.splitlines():
            await client.command(command)
        await client.send(MESSAGE + (b"y" * 998 + b"\r\n") * 600 + b".\r\n")
        assert (await client.reply())[0].startswith("554 5.7.1")
        assert len(check.seen[0][0]) > 500_000
        assert [p for p in mx.blobs.root.rglob("*") if p.is_file()] == []
