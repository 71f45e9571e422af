"""Messages a POP3 client deleted stay recoverable (the undelete bin of docs/retention.md)."""

from __future__ import annotations

from pochta.archive.undelete import recoverable, restore

from .harness import PASSWORD, Pop3

ALICE = "alice@example.test"


async def test_pop3_deletions_can_be_restored(pop3: Pop3) -> None:
    await pop3.deliver(ALICE, b"Subject: keep me\r\n\r\nfetched by mistake\r\n")
    client = await pop3.transcript(
        f"""
        S: +OK*
        C: USER {ALICE}
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK maildrop has 1 messages*
        C: DELE 1
        S: +OK message 1 deleted
        """
    )
    assert (await client.command("QUIT")).endswith("(0 messages left)")
    assert await pop3.inbox(ALICE) == []
    (kept,) = await recoverable(pop3.store, ALICE)
    assert kept.mailbox == "INBOX"
    await restore(pop3.store, ALICE)
    assert len(await pop3.inbox(ALICE)) == 1
