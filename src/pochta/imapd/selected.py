"""The selected mailbox as this session's client sees it: the seq↔UID map and the updates it still owes.

Other sessions (and delivery) change the mailbox at any time. :meth:`Selected.poll` reads what changed
since the MODSEQ this view is at and keeps it pending; :meth:`Selected.updates` turns the pending
changes into untagged responses when the session may send them. EXPUNGE renumbers messages, so it is
held back during FETCH, STORE and SEARCH by sequence number (RFC 9051 §7.5.1) and during those the
expunged messages keep their numbers; EXISTS and FETCH FLAGS may go at any time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from pochta.proto.imap import Condition, SequenceSet, Status
from pochta.proto.imap.responses import (
    ExistsData,
    ExpungeData,
    FetchData,
    FlagsData,
    ListData,
    RecentData,
    Response,
    VanishedData,
    flags_code,
    number_code,
    render_flags,
)
from pochta.proto.imap.seqset import STAR
from pochta.store.api import HIERARCHY_SEPARATOR, Change, ChangeKind, Mailbox, Message
from pochta.store.api import Changes as ChangeLog

from .recent import RecentClaims
from .refusal import Refusal

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SEEN = "\\Seen"
RECENT = "\\Recent"


class Selected:
    def __init__(
        self,
        mailbox: Mailbox,
        messages: Sequence[Message],
        *,
        is_read_only: bool,
        claims: RecentClaims,
        shows_recent: bool,
    ) -> None:
        self.mailbox_id = mailbox.id
        self.account_id = mailbox.account_id
        self.name = mailbox.name
        self.special_use = mailbox.special_use
        self.uidvalidity = mailbox.uidvalidity
        self.uidnext = mailbox.uidnext
        self.is_read_only = is_read_only
        self.modseq = mailbox.highestmodseq  # every change up to here is known (announced or pending)
        self.uids: list[int] = [message.uid for message in messages]  # sequence number - 1 → UID
        self.flags: dict[int, frozenset[str]] = {message.uid: message.flags for message in messages}
        self.modseqs: dict[int, int] = {message.uid: message.modseq for message in messages}
        self._new: list[int] = []  # appended by others, not announced with EXISTS yet
        self._expunged: set[int] = set()  # gone from the store, still numbered for the client
        self._changed: set[int] = set()  # flags changed by others, FETCH owed
        # \Recent (RFC 3501 §2.3.2): a read-write session takes it; EXAMINE only looks
        self._claims = claims
        self.shows_recent = shows_recent  # IMAP4rev1 only: RFC 9051 has no \Recent
        self._mailbox = mailbox
        floor = claims.floor(mailbox, messages)
        above = [uid for uid in self.uids if uid > floor]
        self.recent: set[int] = set(above) if is_read_only else claims.claim(mailbox, above)
        self._announced_keywords: set[str] = set()  # keywords the last FLAGS response listed

    # ---- SELECT ------------------------------------------------------------------------------------

    def opening(self, *, is_rev2: bool) -> list[Response]:
        """The untagged responses of SELECT and EXAMINE (RFC 9051 §6.3.2, RFC 3501 §6.3.1, RFC 7162 §3.1.2.1)."""
        out: list[Response] = [*self._flags_responses(), ExistsData(count=self.count)]
        if not is_rev2:
            out.append(RecentData(count=len(self.recent)))
            unseen = next((n for n, uid in enumerate(self.uids, 1) if SEEN not in self.flags[uid]), None)
            if unseen is not None:
                out.append(Condition(status=Status.OK, code=number_code("UNSEEN", unseen), text="first unseen"))
        out += [
            Condition(status=Status.OK, code=number_code("UIDVALIDITY", self.uidvalidity), text="UIDs valid"),
            Condition(status=Status.OK, code=number_code("UIDNEXT", self.uidnext), text="next UID"),
            Condition(status=Status.OK, code=number_code("HIGHESTMODSEQ", self.modseq), text="modseq"),
        ]
        if is_rev2:  # RFC 9051 §6.3.2: a LIST response with the mailbox name
            out.append(ListData(attributes=(), delimiter=HIERARCHY_SEPARATOR, mailbox=self.name))
        return out

    def resync(self, changes: Sequence[Change], *, known_uids: SequenceSet | None) -> list[Response]:
        """QRESYNC (RFC 7162 §3.2.5): VANISHED (EARLIER) for what was expunged since the client's MODSEQ
        (among ``known_uids``), and FETCH for what changed."""
        largest = max(self.uidnext - 1, 1)
        vanished = {
            change.uid
            for change in changes
            if change.kind is ChangeKind.EXPUNGE
            and (known_uids is None or known_uids.contains(change.uid, largest=largest))
        }
        out: list[Response] = []
        if vanished:
            out.append(VanishedData(uids=sorted(vanished), is_earlier=True))
        for uid in sorted({change.uid for change in changes if change.uid in self.flags}):
            number = self.sequence_number(uid)
            if number is not None:
                out.append(FetchData(sequence_number=number, items=self.flag_items(uid, is_condstore=True)))
        return out

    # ---- numbers ------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.uids)

    def sequence_number(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def resolve(self, sequence_set: SequenceSet, *, is_uid: bool, saved: Sequence[int] = ()) -> list[int]:
        """The UIDs a sequence set names, ascending. ``$`` is the saved SEARCH result (RFC 5182 §2.1)."""
        if sequence_set.is_saved:
            present = set(self.uids)
            return sorted(uid for uid in saved if uid in present)
        if is_uid:
            largest = self.uids[-1] if self.uids else 0
            found: list[int] = []
            for low, high in sequence_set.intervals(largest):
                start = bisect.bisect_left(self.uids, low)
                end = bisect.bisect_right(self.uids, high)
                found.extend(self.uids[start:end])
            return found
        count = len(self.uids)
        for first, last in sequence_set.ranges:  # RFC 9051 §9: a number beyond the last message is an error
            if max(first, last) > count and STAR not in (first, last):
                raise Refusal.bad("invalid message sequence number")
        return [self.uids[number - 1] for number in sequence_set.numbers(count)]

    def live(self, uids: Iterable[int]) -> list[int]:
        """``uids`` without those already expunged by another session."""
        return [uid for uid in uids if uid not in self._expunged]

    # ---- our own changes ----------------------------------------------------------------------------

    def set_flags(self, uid: int, flags: frozenset[str], modseq: int) -> None:
        if uid in self.flags:
            self.flags[uid] = flags
            self.modseqs[uid] = modseq
            self._changed.discard(uid)

    def remove(self, uids: Iterable[int], *, is_qresync: bool) -> list[Response]:
        """Messages this session expunged or moved away: EXPUNGE (or VANISHED) now."""
        gone = set(uids)
        self._expunged -= gone
        return self._expunge_responses(gone, is_qresync=is_qresync)

    # ---- other sessions' changes --------------------------------------------------------------------

    async def poll(self, store: ChangeLog) -> None:
        """Read what changed since :attr:`modseq`; the responses wait in :meth:`updates`."""
        # One read per session, issued after the session's own last write: a read shared between sessions
        # could have started before that write and take a message's MODSEQ backwards (imaptest saw it).
        changes = await store.changes_since(self.mailbox_id, self.modseq)
        known_last = self._new[-1] if self._new else (self.uids[-1] if self.uids else 0)
        for change in changes:
            self.modseq = max(self.modseq, change.modseq)
            uid = change.uid
            if change.kind is ChangeKind.EXPUNGE:
                if uid in self.flags:
                    self._expunged.add(uid)
                elif uid in self._new:
                    self._new.remove(uid)
            elif uid in self.flags:
                if self.flags[uid] != change.flags or self.modseqs[uid] != change.modseq:
                    if self.flags[uid] != change.flags:
                        self._changed.add(uid)
                    self.flags[uid] = change.flags
                    self.modseqs[uid] = change.modseq
            elif uid > known_last:
                self._new.append(uid)
                self.flags[uid] = change.flags
                self.modseqs[uid] = change.modseq
                known_last = uid
        self.uidnext = max(self.uidnext, known_last + 1)

    def updates(self, *, allow_expunge: bool, is_qresync: bool, is_condstore: bool) -> list[Response]:
        """The untagged responses owed now: EXPUNGE (if allowed), EXISTS, FETCH FLAGS."""
        out: list[Response] = []
        if allow_expunge and self._expunged:
            out += self._expunge_responses(self._expunged, is_qresync=is_qresync)
            self._expunged = set()
        touched = self._changed | set(self._new)
        if self._new:
            if self.is_read_only:
                floor = self._claims.floor(self._mailbox, ())
                self.recent.update(uid for uid in self._new if uid > floor)
            else:
                self.recent |= self._claims.claim(self._mailbox, self._new)
            self.uids.extend(self._new)
            self._new = []
            out.append(ExistsData(count=len(self.uids)))
            if self.shows_recent:
                out.append(RecentData(count=len(self.recent)))
        out += self.keyword_updates(touched)
        for uid in sorted(self._changed):
            number = self.sequence_number(uid)
            if number is None or uid in self._expunged:
                continue
            out.append(FetchData(sequence_number=number, items=self.flag_items(uid, is_condstore=is_condstore)))
        self._changed = set()
        return out

    def flag_items(self, uid: int, *, is_condstore: bool) -> list[tuple[bytes, bytes]]:
        items = [(b"UID", b"%d" % uid), (b"FLAGS", render_flags(sorted(self.visible_flags(uid))))]
        if is_condstore:
            items.append((b"MODSEQ", b"(%d)" % self.modseqs[uid]))
        return items

    def _expunge_responses(self, uids: set[int], *, is_qresync: bool) -> list[Response]:
        present: list[tuple[int, int]] = []
        for uid in uids:
            number = self.sequence_number(uid)
            if number is not None:
                present.append((number, uid))
        present.sort()
        for uid in uids:
            self.flags.pop(uid, None)
            self.modseqs.pop(uid, None)
            self._changed.discard(uid)
            self.recent.discard(uid)  # RECENT never counts more than EXISTS
        if not present:
            return []
        removed = {uid for _, uid in present}
        self.uids = [uid for uid in self.uids if uid not in removed]
        if is_qresync:  # RFC 7162 §3.2.10: VANISHED replaces EXPUNGE once QRESYNC is enabled
            return [VanishedData(uids=sorted(removed))]
        # Highest number first, so no response renumbers the messages of those that follow.
        return [ExpungeData(sequence_number=number) for number, _ in reversed(present)]

    def visible_flags(self, uid: int) -> frozenset[str]:
        """The flags FETCH shows: with ``\\Recent`` where this IMAP4rev1 session holds it."""
        flags = self.flags[uid]
        return flags | {RECENT} if self.shows_recent and uid in self.recent else flags

    def keyword_updates(self, uids: Iterable[int]) -> list[Response]:
        """FLAGS and PERMANENTFLAGS again when one of ``uids`` has a keyword not announced yet
        (RFC 9051 §7.3.5: before any FETCH shows it)."""
        announced = self._announced_keywords
        for uid in uids:
            if any(flag not in announced and not flag.startswith("\\") for flag in self.flags.get(uid, ())):
                return self._flags_responses()
        return []

    def _flags_responses(self) -> list[Response]:
        keywords = self.keywords()
        self._announced_keywords = set(keywords)
        permanent = () if self.is_read_only else (*SYSTEM_FLAGS, *keywords, "\\*")
        return [
            FlagsData(flags=(*SYSTEM_FLAGS, *keywords)),
            Condition(status=Status.OK, code=flags_code("PERMANENTFLAGS", permanent), text="flags"),
        ]

    def keywords(self) -> list[str]:
        """Keywords in use, plus every one this session announced before: a FLAGS response must not drop a
        keyword a message still has in the client's view (the FETCH that removes it may still be owed)."""
        found: set[str] = set(self._announced_keywords)
        for flags in self.flags.values():
            found.update(flag for flag in flags if not flag.startswith("\\"))
        return sorted(found)
