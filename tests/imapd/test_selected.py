"""The selected-mailbox view without sockets: numbers, sets, and when updates may go out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pochta.imapd.mailboxes import check_name
from pochta.imapd.recent import RecentClaims
from pochta.imapd.refusal import Refusal
from pochta.imapd.selected import Selected
from pochta.proto.imap import SequenceSet
from pochta.proto.imap.responses import ExistsData, ExpungeData, FetchData, FlagsData, VanishedData
from pochta.store.api import Mailbox, Message

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _selected(uids: list[int]) -> Selected:
    mailbox = Mailbox(
        id=1, account_id=1, name="INBOX", special_use=None, is_subscribed=True, uidvalidity=7,
        uidnext=max(uids, default=0) + 1, highestmodseq=5, messages=len(uids), unseen=0, size=0,
    )  # fmt: skip
    messages = [
        Message(
            mailbox_id=1, uid=uid, modseq=1, flags=frozenset(), internal_date=NOW, save_date=NOW, size=1, blob_id=""
        )
        for uid in uids
    ]
    return Selected(mailbox, messages, is_read_only=False, claims=RecentClaims(started=NOW), shows_recent=False)


def test_sequence_sets_resolve_to_uids() -> None:
    selected = _selected([3, 5, 9, 12])
    assert selected.resolve(SequenceSet.parse("2:*"), is_uid=False) == [5, 9, 12]
    assert selected.resolve(SequenceSet.parse("*"), is_uid=False) == [12]
    assert selected.resolve(SequenceSet.parse("4:10"), is_uid=True) == [5, 9]
    assert selected.resolve(SequenceSet.parse("20:*"), is_uid=True) == [12]  # RFC 9051 §6.4.9
    assert selected.resolve(SequenceSet.parse("$"), is_uid=False, saved=[9, 4]) == [9]
    with pytest.raises(Refusal):
        selected.resolve(SequenceSet.parse("5"), is_uid=False)
    assert _selected([]).resolve(SequenceSet.parse("1:*"), is_uid=True) == []


def test_expunges_wait_until_allowed_and_go_highest_first() -> None:
    selected = _selected([3, 5, 9, 12])
    selected._expunged = {5, 12}  # as poll() records another session's EXPUNGE
    selected._new = [13]
    held = selected.updates(allow_expunge=False, is_qresync=False, is_condstore=False)
    assert held == [ExistsData(count=5)] and selected.count == 5
    assert selected.live([3, 5, 13]) == [3, 13]
    sent = selected.updates(allow_expunge=True, is_qresync=False, is_condstore=False)
    assert sent == [ExpungeData(sequence_number=4), ExpungeData(sequence_number=2)]
    assert selected.uids == [3, 9, 13]


def test_qresync_reports_vanished_and_flag_changes_carry_uid() -> None:
    selected = _selected([3, 5])
    selected._expunged = {3}
    selected.flags[5] = frozenset({"\\Seen"})
    selected._changed = {5}
    sent = selected.updates(allow_expunge=True, is_qresync=True, is_condstore=True)
    assert sent == [
        VanishedData(uids=[3]),
        FetchData(sequence_number=1, items=[(b"UID", b"5"), (b"FLAGS", b"(\\Seen)"), (b"MODSEQ", b"(1)")]),
    ]


@pytest.mark.parametrize("name", ["", "/", "/abs", "a//b", "..", "a/../b", "a/.", "tab\tname", "star*", "%", " x"])
def test_bad_mailbox_names(name: str) -> None:
    with pytest.raises(Refusal):
        check_name(name)


def test_good_mailbox_names() -> None:
    assert check_name("inbox") == "INBOX"
    assert check_name("Work/2026", is_create=True) == "Work/2026"
    assert check_name("Work/", is_create=True) == "Work"
    assert check_name("Привет/мир") == "Привет/мир"


def test_a_flags_response_never_drops_a_keyword_the_client_may_still_see() -> None:
    """Another session takes $Old off message 3 and puts $New on message 5: the FLAGS response that must
    precede the FETCH showing $New still lists $Old, whose removal the client learns only from a FETCH."""
    selected = _selected([3, 5])
    selected.flags[3] = frozenset({"$Old"})
    selected.keyword_updates([3])  # announced
    selected.flags[3] = frozenset()
    selected.flags[5] = frozenset({"$New"})
    selected._changed = {3, 5}
    responses = selected.updates(allow_expunge=True, is_qresync=False, is_condstore=False)
    flags = responses[0]
    assert flags == FlagsData(flags=("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$New", "$Old"))
