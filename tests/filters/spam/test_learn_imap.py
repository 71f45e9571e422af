"""Learning from users, end to end: mail arrives on the MX, the user judges it with imaplib over TLS (MOVE,
COPY + delete, $Junk/$NotJunk), and the next similar message scores accordingly."""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pochta.filters.spam import learn
from pochta.filters.spam.learn import Learner
from pochta.store.api import SpamModel

from ...certs import client_tls
from ...smtpd.harness import PASSWORD, Mx, running_mx
from .samples import message
from .test_check import header, send, stored, train

pytestmark = pytest.mark.e2e

ALICE = "alice@example.test"
NEWSLETTER = "weekly gardening digest tulips compost seedlings greenhouse offers subscribe"


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path, listen={"imaps": ["127.0.0.1:0"]}, spam={"enabled": True}) as running:
        await running.add_user(ALICE)
        await running.add_user("bob@example.test")
        await train(running)
        yield running


def _imap(mx: Mx, actions: Callable[[imaplib.IMAP4], None]) -> None:
    port = mx.server.ports("imaps")[0]
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=10) as client:
        client.login(ALICE, PASSWORD)
        actions(client)


async def imap(mx: Mx, actions: Callable[[imaplib.IMAP4], None]) -> None:
    await asyncio.to_thread(_imap, mx, actions)
    learner = mx.server.spam_learner
    assert isinstance(learner, Learner)
    await learner.idle()


async def score_of_next(mx: Mx, number: int, *, to: str = ALICE) -> float:
    await send(mx, [to], message(NEWSLETTER, subject="Gardening digest", number=number))
    for mailbox in ("INBOX", "Junk"):
        for data in await stored(mx, to, mailbox):
            if f"<note{number}@".encode() in data:
                return float(header(data, "X-Spam-Score"))
    raise AssertionError(f"message {number} not stored")


def _ok(result: tuple[str, list[object]]) -> list[object]:
    status, data = result
    assert status == "OK", data
    return data


async def test_moving_to_junk_teaches_spam_and_moving_out_teaches_ham(mx: Mx) -> None:
    first = await score_of_next(mx, 1)

    def move_to_junk(client: imaplib.IMAP4) -> None:
        _ok(client.select("INBOX"))
        _ok(client.uid("MOVE", "1", "Junk"))

    await imap(mx, move_to_junk)
    second = await score_of_next(mx, 2)
    assert second > first
    assert await score_of_next(mx, 3, to="bob@example.test") == first  # bob's model learned nothing

    def rescue(client: imaplib.IMAP4) -> None:  # alice changes her mind: out of Junk into INBOX
        _ok(client.select("Junk"))
        _ok(client.uid("MOVE", "1:*", "INBOX"))

    await imap(mx, rescue)
    third = await score_of_next(mx, 4)
    assert third < first  # the one message moved from spam to ham (once: moved over, not counted twice)
    user = await mx.store.spam_model(1)
    assert (user.spam, user.ham) == (0, 2)


async def test_copy_and_keywords_teach_too_but_trash_does_not(mx: Mx) -> None:
    first = await score_of_next(mx, 1)
    await send(mx, [ALICE], message("lunch on friday?", number=2))

    def copy_to_junk_and_delete(client: imaplib.IMAP4) -> None:
        _ok(client.select("INBOX"))
        _ok(client.uid("COPY", "1", "Junk"))
        _ok(client.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)"))
        _ok(client.expunge())

    await imap(mx, copy_to_junk_and_delete)
    assert await score_of_next(mx, 3) > first
    assert _counts(await mx.store.spam_model(1)) == (1, 0)

    def junk_keyword(client: imaplib.IMAP4) -> None:  # the lunch note (UID 2) flagged by a client
        _ok(client.select("INBOX"))
        _ok(client.uid("STORE", "2", "+FLAGS", "($Junk)"))

    await imap(mx, junk_keyword)
    assert _counts(await mx.store.spam_model(1)) == (2, 0)

    def junk_to_trash(client: imaplib.IMAP4) -> None:  # deleting spam is not "this is ham"
        _ok(client.select("Junk"))
        _ok(client.uid("MOVE", "1:*", "Trash"))

    before = await mx.store.spam_model(1)
    await imap(mx, junk_to_trash)
    assert (await mx.store.spam_model(1)).generation == before.generation

    def not_junk_keyword(client: imaplib.IMAP4) -> None:  # and the lunch note was not spam after all
        _ok(client.select("INBOX"))
        _ok(client.uid("STORE", "2", "+FLAGS", "($NotJunk)"))

    await imap(mx, not_junk_keyword)
    assert _counts(await mx.store.spam_model(1)) == (1, 1)


def _counts(model: SpamModel) -> tuple[int, int]:
    return model.spam, model.ham


async def test_a_move_of_many_messages_is_taught_in_chunks(mx: Mx) -> None:
    count = 2 * learn.CHUNK + learn.CHUNK // 2
    before = await mx.store.spam_model(1)

    def append_and_move(client: imaplib.IMAP4) -> None:
        for number in range(count):
            data = message(f"{NEWSLETTER} issue {number}", number=number)
            _ok(client.append("INBOX", "", imaplib.Time2Internaldate(0), data))
        _ok(client.select("INBOX"))
        _ok(client.uid("MOVE", "1:*", "Junk"))

    await imap(mx, append_and_move)
    user = await mx.store.spam_model(1)
    assert _counts(user) == (count, 0)
    assert user.generation == before.generation + 3  # three writes, each holding the event loop briefly


async def test_a_message_whose_blob_is_gone_is_passed_over(mx: Mx) -> None:
    def append(client: imaplib.IMAP4) -> None:
        for number in range(3):
            _ok(client.append("INBOX", "", imaplib.Time2Internaldate(0), message(NEWSLETTER, number=number)))

    await imap(mx, append)
    await mx.blobs.delete((await mx.inbox(ALICE))[1].blob_id)  # as if expunged and collected meanwhile

    def move(client: imaplib.IMAP4) -> None:
        _ok(client.select("INBOX"))
        _ok(client.uid("MOVE", "1:*", "Junk"))

    await imap(mx, move)
    assert _counts(await mx.store.spam_model(1)) == (2, 0)  # the other two were taught
