"""Users' Sieve scripts at delivery on the MX: placements, discard, reject, redirect, vacation, errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from pochta.filters.pipeline import Action, Inbound, Verdict
from pochta.mail.envelope import Envelope
from pochta.store.api import INBOX

from .harness import PASSWORD, Client, Mx, running_mx


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        yield server


async def _script(mx: Mx, address: str, source: str) -> None:
    account = await mx.store.get_account(address)
    assert account is not None
    await mx.store.put_sieve_script(account.id, "main", source)
    await mx.store.activate_sieve_script(account.id, "main")


async def send(mx: Mx, sender: str, recipients: list[str], message: bytes) -> str:
    """One transaction; the reply to the end of data."""
    client: Client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("HELO client.test")
    assert (await client.command(f"MAIL FROM:<{sender}>"))[0].startswith("250")
    for rcpt in recipients:
        assert (await client.command(f"RCPT TO:<{rcpt}>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(message.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    reply = (await client.reply())[-1]
    await client.close()
    return reply


async def _folder(mx: Mx, address: str, name: str) -> list[bytes]:
    account = await mx.store.get_account(address)
    assert account is not None
    mailbox = await mx.store.get_mailbox(account.id, name)
    if mailbox is None:
        return []
    return [await mx.blobs.read(m.blob_id) for m in await mx.store.messages(mailbox.id)]


def _message(*headers: str, body: str = "Hello.") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


LIST_MAIL = _message(
    "From: list@lists.test", "To: alice@example.test", "List-Id: <dev.lists.test>", "Subject: [dev] news"
)
PLAIN_MAIL = _message(
    "From: carol@remote.test", "To: alice@example.test", "Subject: hi", "Message-ID: <m1@remote.test>"
)


async def test_fileinto_creates_the_folder_and_other_mail_stays_in_inbox(mx: Mx) -> None:
    await _script(
        mx,
        "alice@example.test",
        'require ["fileinto", "mailbox", "imap4flags"];\n'
        'if exists "List-Id" { fileinto :create :flags "\\\\Seen" "Lists/dev"; stop; }\n',
    )
    assert (await send(mx, "list@lists.test", ["alice@example.test"], LIST_MAIL)).startswith("250")
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    (filed,) = await _folder(mx, "alice@example.test", "Lists/dev")
    assert filed.endswith(LIST_MAIL)
    account = await mx.store.get_account("alice@example.test")
    assert account is not None
    mailbox = await mx.store.get_mailbox(account.id, "Lists/dev")
    assert mailbox is not None
    (message,) = await mx.store.messages(mailbox.id)
    assert message.flags == frozenset({"\\Seen"})
    (kept,) = await mx.inbox_bytes("alice@example.test")
    assert kept.endswith(PLAIN_MAIL)


async def test_fileinto_a_missing_folder_without_create_keeps_in_inbox(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "fileinto"; fileinto "Nowhere";')
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 1


async def test_discard_stores_nothing_but_accepts(mx: Mx) -> None:
    await _script(mx, "alice@example.test", "discard;")
    assert (await send(mx, "carol@remote.test", ["alice@example.test", "bob@example.test"], PLAIN_MAIL)).startswith(
        "250"
    )
    assert await mx.inbox_bytes("alice@example.test") == []
    assert len(await mx.inbox_bytes("bob@example.test")) == 1
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250 2.0.0")
    assert await mx.inbox_bytes("alice@example.test") == []


async def test_reject_at_smtp_time_for_a_single_recipient(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "reject"; reject "I do not want this.";')
    assert await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL) == "550 5.7.1 I do not want this."
    assert await mx.inbox_bytes("alice@example.test") == []
    assert await mx.store.queue_entries() == []


async def test_reject_among_several_recipients_sends_a_dsn(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "reject"; reject "Not for me.";')
    assert (await send(mx, "carol@remote.test", ["alice@example.test", "bob@example.test"], PLAIN_MAIL)).startswith(
        "250"
    )
    assert await mx.inbox_bytes("alice@example.test") == []
    assert len(await mx.inbox_bytes("bob@example.test")) == 1
    (entry,) = await mx.store.queue_entries()
    envelope = Envelope.loads(entry.envelope)
    assert envelope.mail_from == "" and [r.address for r in entry.recipients] == ["carol@remote.test"]
    report = await mx.blobs.read(entry.blob_id)
    assert b"report-type=delivery-status" in report and b"Not for me." in report


async def test_redirect_goes_through_the_queue_with_the_original_sender(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'redirect "alice.elsewhere@remote.test";')
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert await mx.inbox_bytes("alice@example.test") == []  # redirect cancels the implicit keep
    (entry,) = await mx.store.queue_entries()
    assert Envelope.loads(entry.envelope).mail_from == "carol@remote.test"
    assert [r.address for r in entry.recipients] == ["alice.elsewhere@remote.test"]
    content = await mx.blobs.read(entry.blob_id)
    assert content.startswith(b"Delivered-To: alice@example.test\r\nReceived: ")
    assert b"Return-Path" not in content and content.endswith(PLAIN_MAIL)


async def test_redirect_copy_to_a_local_user_and_keep(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "copy"; redirect :copy "bob@example.test";')
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 1
    (forwarded,) = await mx.inbox_bytes("bob@example.test")
    assert forwarded.startswith(b"Delivered-To: alice@example.test\r\n")
    assert await mx.store.queue_entries() == []


async def test_a_redirect_loop_is_kept_instead(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'redirect "alice.elsewhere@remote.test";')
    looped = b"Delivered-To: alice@example.test\r\n" + PLAIN_MAIL
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], looped)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 1
    assert await mx.store.queue_entries() == []


VACATION = 'require "vacation"; vacation :days 7 :subject "Away" "I am away.";'


async def test_vacation_replies_once_per_sender_and_never_to_lists(mx: Mx) -> None:
    await _script(mx, "alice@example.test", VACATION)
    for _ in range(2):
        assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert (await send(mx, "list@lists.test", ["alice@example.test"], LIST_MAIL)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 3  # vacation keeps every message
    (entry,) = await mx.store.queue_entries()  # one reply, to carol; none to the list
    assert Envelope.loads(entry.envelope).mail_from == ""  # RFC 3834 §3.3
    assert [r.address for r in entry.recipients] == ["carol@remote.test"]
    reply = await mx.blobs.read(entry.blob_id)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"From: alice@example.test" in lines and b"To: carol@remote.test" in lines
    assert b"Subject: Away" in lines and b"Auto-Submitted: auto-replied" in lines
    assert b"In-Reply-To: <m1@remote.test>" in lines and b"References: <m1@remote.test>" in lines
    assert body == b"I am away.\r\n"


async def test_vacation_reply_to_a_local_user_lands_in_their_inbox(mx: Mx) -> None:
    await _script(mx, "alice@example.test", VACATION)
    mail = _message("From: bob@example.test", "To: alice@example.test", "Subject: lunch?")
    assert (await send(mx, "bob@example.test", ["alice@example.test"], mail)).startswith("250")
    (reply,) = await mx.inbox_bytes("bob@example.test")
    assert b"Subject: Away\r\n" in reply and b"Auto-Submitted: auto-replied\r\n" in reply
    assert await mx.store.queue_entries() == []


async def test_no_vacation_to_auto_submitted_bulk_null_or_unaddressed_mail(mx: Mx) -> None:
    await _script(mx, "alice@example.test", VACATION)
    cases = [
        (
            "carol@remote.test",
            _message("From: carol@remote.test", "To: alice@example.test", "Auto-Submitted: auto-generated"),
        ),
        ("carol@remote.test", _message("From: carol@remote.test", "To: alice@example.test", "Precedence: bulk")),
        ("", _message("From: daemon@remote.test", "To: alice@example.test")),
        ("carol@remote.test", _message("From: carol@remote.test", "To: someone@else.test")),
        ("alice@example.test", _message("From: alice@example.test", "To: alice@example.test")),
    ]
    for sender, mail in cases:
        assert (await send(mx, sender, ["alice@example.test"], mail)).startswith("250")
    assert await mx.store.queue_entries() == []
    assert len(await mx.inbox_bytes("alice@example.test")) == len(cases)


async def test_a_runtime_error_keeps_the_message(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "include"; include :personal "missing"; discard;')
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 1


async def test_include_reads_the_users_other_scripts(mx: Mx) -> None:
    account = await mx.store.get_account("alice@example.test")
    assert account is not None
    await mx.store.put_sieve_script(account.id, "filing", 'require "fileinto"; fileinto "Archive";')
    await _script(mx, "alice@example.test", 'require "include"; include :personal "filing";')
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    assert len(await _folder(mx, "alice@example.test", "Archive")) == 1
    assert await mx.inbox_bytes("alice@example.test") == []


class _SpamCheck:
    name = "spam"

    async def check(self, message: Inbound, facts: Mapping[str, str]) -> Verdict:
        return Verdict(action=Action.JUNK, facts={"spamtest": "9"})


async def test_implicit_keep_honours_junk_and_scripts_see_spamtest(tmp_path: Path) -> None:
    async with running_mx(tmp_path, checks=[_SpamCheck()]) as mx:
        await mx.add_user("alice@example.test")
        await mx.add_user("bob@example.test")
        await _script(mx, "alice@example.test", "keep;")
        await _script(
            mx,
            "bob@example.test",
            'require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto"];\n'
            'if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "Trash"; }\n',
        )
        assert (await send(mx, "carol@remote.test", ["alice@example.test", "bob@example.test"], PLAIN_MAIL)).startswith(
            "250"
        )
        assert await mx.inbox_bytes("alice@example.test") == []
        assert len(await _folder(mx, "alice@example.test", "Junk")) == 1
        assert len(await _folder(mx, "bob@example.test", "Trash")) == 1
        assert await _folder(mx, "bob@example.test", "Junk") == []


async def test_accounts_without_scripts_are_untouched(mx: Mx) -> None:
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    account = await mx.store.get_account("alice@example.test")
    assert account is not None
    inbox = await mx.store.get_mailbox(account.id, INBOX)
    assert inbox is not None and inbox.messages == 1


async def test_scripts_run_on_mail_our_users_submit(tmp_path: Path) -> None:
    async with running_mx(tmp_path, listen={"submissions": ["127.0.0.1:0"]}) as mx:
        await mx.add_user("alice@example.test")
        await mx.add_user("bob@example.test")
        await _script(mx, "alice@example.test", VACATION)
        client = await mx.connect("submissions", tls=True)
        assert (await client.reply())[0].startswith("220")
        await client.command("EHLO laptop")
        credentials = base64.b64encode(f"\0bob@example.test\0{PASSWORD}".encode()).decode()
        assert (await client.command(f"AUTH PLAIN {credentials}"))[0].startswith("235")
        assert (await client.command("MAIL FROM:<bob@example.test>"))[0].startswith("250")
        assert (await client.command("RCPT TO:<alice@example.test>"))[0].startswith("250")
        assert (await client.command("DATA"))[0].startswith("354")
        await client.send(b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: lunch?\r\n\r\nlunch?\r\n.\r\n")
        assert (await client.reply())[0].startswith("250")
        await client.close()
        assert len(await mx.inbox_bytes("alice@example.test")) == 1
        (reply,) = await mx.inbox_bytes("bob@example.test")
        assert b"Subject: Away\r\n" in reply and b"Auto-Submitted: auto-replied\r\n" in reply


async def test_editheader_changes_only_that_accounts_copy(mx: Mx) -> None:
    await _script(
        mx,
        "alice@example.test",
        'require ["editheader", "copy"]; addheader "X-Filtered" "yes"; deleteheader "Subject";'
        ' redirect :copy "alice.elsewhere@remote.test";',
    )
    assert (await send(mx, "carol@remote.test", ["alice@example.test", "bob@example.test"], PLAIN_MAIL)).startswith(
        "250"
    )
    (alices,) = await mx.inbox_bytes("alice@example.test")
    (bobs,) = await mx.inbox_bytes("bob@example.test")
    assert b"X-Filtered: yes\r\n" in alices and b"Subject: hi" not in alices and alices.endswith(b"\r\n\r\nHello.\r\n")
    assert b"X-Filtered" not in bobs and bobs.endswith(PLAIN_MAIL)
    (entry,) = await mx.store.queue_entries()
    redirected = await mx.blobs.read(entry.blob_id)
    assert redirected.startswith(b"Delivered-To: alice@example.test\r\n") and b"X-Filtered: yes\r\n" in redirected
    assert b"Return-Path" not in redirected


async def test_duplicate_discards_a_second_copy_of_one_message_id(mx: Mx) -> None:
    await _script(mx, "alice@example.test", 'require "duplicate"; if duplicate { discard; }')
    for _ in range(2):
        assert (await send(mx, "carol@remote.test", ["alice@example.test"], PLAIN_MAIL)).startswith("250")
    other = PLAIN_MAIL.replace(b"<m1@remote.test>", b"<m2@remote.test>")
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], other)).startswith("250")
    assert len(await mx.inbox_bytes("alice@example.test")) == 2  # m1 once, m2 once (RFC 7352)


async def test_a_large_message_is_read_mapped_and_copied_in_chunks(mx: Mx) -> None:
    await _script(
        mx,
        "alice@example.test",
        'require ["fileinto", "mailbox", "copy", "body"];\n'
        'if body :contains "needle" { fileinto :create "Big"; redirect :copy "alice.elsewhere@remote.test"; }\n',
    )
    big = _message("From: carol@remote.test", "To: alice@example.test", "Subject: big", body="x" * 70 + "\r\n")
    big = big[:-2] + (b"line of filler text " * 4 + b"\r\n") * 5000 + b"the needle is here\r\n"
    assert len(big) > 400_000  # spilled to disk, not held in memory
    assert (await send(mx, "carol@remote.test", ["alice@example.test"], big)).startswith("250")
    (filed,) = await _folder(mx, "alice@example.test", "Big")
    assert filed.endswith(big)
    (entry,) = await mx.store.queue_entries()
    redirected = await mx.blobs.read(entry.blob_id)
    assert redirected.startswith(b"Delivered-To: alice@example.test\r\n") and redirected.endswith(big)
