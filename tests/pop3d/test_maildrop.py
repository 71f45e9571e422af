"""Maildrop semantics: a snapshot at login, DELE marks, QUIT removes in one store call, a dropped connection
removes nothing, one session per maildrop, UIDL stable across sessions."""

from __future__ import annotations

from pathlib import Path

from .harness import PASSWORD, Pop3, running_pop3

ALICE = "alice@example.test"


async def _three_messages(pop3: Pop3) -> list[int]:
    return [await pop3.deliver(ALICE, f"Subject: {n}\r\n\r\nmessage {n}\r\n".encode()) for n in range(1, 4)]


async def test_dele_marks_and_quit_removes_in_the_update_state(pop3: Pop3) -> None:
    uids = await _three_messages(pop3)
    client = await pop3.transcript(
        f"""
        S: +OK*
        C: USER {ALICE}
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK maildrop has 3 messages (75 octets)
        C: DELE 2
        S: +OK message 2 deleted
        C: DELE 2
        S: -ERR message 2 already deleted
        C: RETR 2
        S: -ERR message 2 already deleted
        C: LIST 2
        S: -ERR message 2 already deleted
        C: STAT
        S: +OK 2 50
        C: LIST
        S: +OK 2 messages (50 octets)
        S: 1 25
        S: 3 25
        S: .
        C: RSET
        S: +OK maildrop has 3 messages (75 octets)
        C: DELE 1
        S: +OK message 1 deleted
        C: DELE 3
        S: +OK message 3 deleted
        C: LIST 4
        S: -ERR no such message
        """
    )
    assert [m.uid for m in await pop3.inbox(ALICE)] == uids  # nothing removed before QUIT
    assert (await client.command("QUIT")).endswith("(1 messages left)")
    assert await client.is_closed()
    assert [m.uid for m in await pop3.inbox(ALICE)] == [uids[1]]


async def test_a_dropped_connection_deletes_nothing(pop3: Pop3) -> None:
    uids = await _three_messages(pop3)
    client = await pop3.connect()
    await client.line()
    await client.login(ALICE)
    for msg in (1, 2, 3):
        assert (await client.command(f"DELE {msg}")).startswith("+OK")
    await client.close()
    second = await pop3.connect()
    await second.line()
    # the lock is released when the first session notices the close; retry until it has
    for _ in range(50):
        reply = await second.login(ALICE)
        if not reply.startswith("-ERR [IN-USE]"):
            break
    assert reply == "+OK maildrop has 3 messages (75 octets)"
    assert [m.uid for m in await pop3.inbox(ALICE)] == uids


async def test_a_second_session_on_the_same_maildrop_is_in_use(pop3: Pop3) -> None:
    first = await pop3.connect()
    await first.line()
    assert (await first.login(ALICE)).startswith("+OK")
    second = await pop3.connect(tls=True)
    await second.line()
    assert await second.login(ALICE) == "-ERR [IN-USE] maildrop is in use by another POP3 session"
    assert await second.command("STAT") == "-ERR log in first"  # still in AUTHORIZATION
    await pop3.add_user("bob@example.test")
    third = await pop3.connect()
    await third.line()
    assert (await third.login("bob@example.test")).startswith("+OK")  # other maildrops are free
    assert (await first.command("QUIT")).startswith("+OK")
    assert await first.is_closed()
    assert (await second.login(ALICE)).startswith("+OK maildrop has 0 messages")


async def test_the_listing_is_a_snapshot_taken_at_login(pop3: Pop3) -> None:
    await _three_messages(pop3)
    client = await pop3.connect()
    await client.line()
    await client.login(ALICE)
    await pop3.deliver(ALICE, b"Subject: late\r\n\r\narrived after login\r\n")
    assert await client.command("STAT") == "+OK 3 75"
    assert await client.command("LIST 4") == "-ERR no such message"
    # another client (IMAP) expunges message 1 meanwhile: POP3 still lists it, and QUIT still works
    await pop3.store.expunge(await pop3.inbox_id(ALICE), [(await pop3.inbox(ALICE))[0].uid])
    assert await client.command("DELE 1") == "+OK message 1 deleted"
    assert await client.command("DELE 2") == "+OK message 2 deleted"
    assert (await client.command("QUIT")).startswith("+OK")
    assert [m.size for m in await pop3.inbox(ALICE)] == [25, 38]


async def test_uidl_is_stable_across_sessions_and_never_reused(pop3: Pop3) -> None:
    await _three_messages(pop3)
    account = await pop3.store.get_account(ALICE)
    assert account is not None
    mailbox = await pop3.store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    client = await pop3.connect()
    await client.line()
    await client.login(ALICE)
    _, body = await client.multiline("UIDL")
    first = dict(line.split(" ") for line in body.decode().split("\r\n")[:-2])
    assert list(first) == ["1", "2", "3"]
    assert all(value.startswith(f"{mailbox.uidvalidity}.") for value in first.values())
    assert len(set(first.values())) == 3
    assert await client.command("UIDL 2") == f"+OK 2 {first['2']}"
    await client.command("DELE 1")
    await client.command("QUIT")
    await pop3.deliver(ALICE, b"Subject: 4\r\n\r\nmessage 4\r\n")
    second = await pop3.connect()
    await second.line()
    for _ in range(50):
        if (await second.login(ALICE)).startswith("+OK"):
            break
    _, body = await second.multiline("UIDL")
    again = [line.split(" ")[1] for line in body.decode().split("\r\n")[:-2]]
    assert again[:2] == [first["2"], first["3"]]
    assert again[2] not in first.values()


async def test_the_autologout_timer_closes_silently_and_deletes_nothing(tmp_path: Path) -> None:
    async with running_pop3(tmp_path, idle_timeout=0.3) as pop3:
        await pop3.add_user(ALICE)
        await pop3.deliver(ALICE, b"Subject: 1\r\n\r\nstays\r\n")
        client = await pop3.connect()
        await client.line()
        await client.login(ALICE)
        assert (await client.command("DELE 1")).startswith("+OK")
        assert await client.is_closed()  # RFC 1939 §3: no response, no UPDATE state
        assert len(await pop3.inbox(ALICE)) == 1
