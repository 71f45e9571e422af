"""Message commands of the selected state: FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE (RFC 9051 §6.4,
RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 7162 CONDSTORE/QRESYNC, RFC 4731 ESEARCH, RFC 5182 SEARCHRES)
and APPEND's upload (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from pochta.delivery import parse_blob, parse_file
from pochta.proto.imap import Code, Condition, SequenceSet, Status, compress
from pochta.proto.imap import commands as c
from pochta.proto.imap.events import AppendStart
from pochta.proto.imap.responses import (
    ESearchData,
    FetchData,
    SearchData,
    VanishedData,
    appenduid,
    copyuid,
    render_flags,
)
from pochta.store.api import Account, BlobWriter, ChangeKind, FlagOp, Mailbox, NewMessage, SpecialUse, StoreError

from . import search
from .context import Context, Output
from .fetch import Value, needs_structure, render_items, sets_seen
from .mailboxes import check_name
from .refusal import Refusal, refusal_for
from .selected import Selected

SEEN = "\\Seen"
DELETED = "\\Deleted"
_BATCH = 200  # messages read from the store per round trip during FETCH
_CHUNK = 64 * 1024  # octets of a streamed literal read from the blob at a time
_MAX_HELD = 4 * 2**20  # octets of small APPEND messages kept in memory until the command ends
_FLAG_OPS = {c.StoreMode.REPLACE: FlagOp.SET, c.StoreMode.ADD: FlagOp.ADD, c.StoreMode.REMOVE: FlagOp.REMOVE}


# ---- FETCH ----------------------------------------------------------------------------------------------


async def fetch(
    context: Context,
    selected: Selected,
    command: c.Fetch,
    out: Output,
    *,
    saved: Sequence[int],
    is_condstore: bool,
) -> None:
    store = context.store
    uids = selected.live(selected.resolve(command.sequence_set, is_uid=command.is_uid, saved=saved))
    items = list(command.items)
    if command.changed_since is not None:  # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
        if c.FetchAttribute.MODSEQ not in items:
            items.append(c.FetchAttribute.MODSEQ)
        uids = [uid for uid in uids if selected.modseqs[uid] > command.changed_since]
        if command.is_vanished:
            await _vanished_earlier(context, selected, command.sequence_set, command.changed_since, out)
    newly_seen: set[int] = set()
    if sets_seen(items) and not selected.is_read_only:
        unseen = [uid for uid in uids if SEEN not in selected.flags[uid]]
        if unseen:
            result = await store.store_flags(selected.mailbox_id, unseen, op=FlagOp.ADD, flags=frozenset({SEEN}))
            for update in result.updated:
                selected.set_flags(update.uid, update.flags, update.modseq)
                newly_seen.add(update.uid)
    with_structure = needs_structure(items)
    for start in range(0, len(uids), _BATCH):
        chunk = uids[start : start + _BATCH]
        for message in await store.messages(selected.mailbox_id, uids=chunk, with_structure=with_structure):
            number = selected.sequence_number(message.uid)
            if number is None:
                continue
            flags = selected.visible_flags(message.uid)
            modseq = selected.modseqs[message.uid]
            pairs = await render_items(message, items, blobs=context.blobs, flags=flags, modseq=modseq)
            if message.uid in newly_seen:  # RFC 9051 §6.4.5: the changed FLAGS go with the response
                if c.FetchAttribute.FLAGS not in items:
                    pairs.append((b"FLAGS", render_flags(sorted(flags))))
                if is_condstore and c.FetchAttribute.MODSEQ not in items:
                    pairs.append((b"MODSEQ", b"(%d)" % modseq))
            await _send_fetch(context, out, number, pairs)
        await out.drain()


async def _send_fetch(context: Context, out: Output, number: int, pairs: Sequence[tuple[bytes, Value]]) -> None:
    """One FETCH response; large literals are copied from the blob in pieces, never held whole."""
    small = [(name, value) for name, value in pairs if isinstance(value, bytes)]
    if len(small) == len(pairs):
        out.send(FetchData(sequence_number=number, items=small))
        return
    out.write(b"* %d FETCH (" % number)
    for index, (name, value) in enumerate(pairs):
        out.write((b" " if index else b"") + name + b" ")
        if isinstance(value, bytes):
            out.write(value)
            continue
        out.write(b"{%d}\r\n" % value.size)
        for start in range(value.start, value.end, _CHUNK):
            out.write(await context.blobs.read(value.blob_id, start, min(value.end, start + _CHUNK)))
            await out.drain()
    out.write(b")\r\n")


async def _vanished_earlier(
    context: Context, selected: Selected, uid_set: SequenceSet, modseq: int, out: Output
) -> None:
    """RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED) reports UIDs expunged since m."""
    changes = await context.store.changes_since(selected.mailbox_id, modseq)
    largest = max(selected.uidnext - 1, 1)
    gone = sorted(
        {
            change.uid
            for change in changes
            if change.kind is ChangeKind.EXPUNGE and uid_set.contains(change.uid, largest=largest)
        }
    )
    if gone:
        out.send(VanishedData(uids=gone, is_earlier=True))


# ---- SEARCH ---------------------------------------------------------------------------------------------


async def search_messages(
    context: Context,
    selected: Selected,
    command: c.Search,
    out: Output,
    *,
    tag: str,
    saved: Sequence[int],
    is_rev2: bool,
) -> list[int] | None:
    """Answer SEARCH; returns the new saved result when RETURN (SAVE) was asked (RFC 5182), else None."""
    criteria = command.criteria
    needs_content = search.needs_content(criteria)
    search_context = search.Context(
        count=selected.count,
        largest_uid=selected.uids[-1] if selected.uids else 0,
        saved=frozenset(saved),
        now=context.settings.now(),
    )
    matched: list[int] = []
    for message in await context.store.messages(selected.mailbox_id, with_structure=needs_content):
        number = selected.sequence_number(message.uid)
        if number is None or message.uid not in selected.flags:
            continue
        content = await context.blobs.read(message.blob_id) if needs_content else None
        candidate = search.Candidate(
            message=message,
            sequence_number=number,
            flags=selected.flags[message.uid],
            modseq=selected.modseqs[message.uid],
            content=content,
            is_recent=message.uid in selected.recent,
        )
        if search.matches(criteria, candidate, search_context):
            matched.append(message.uid)
    numbers = matched if command.is_uid else [selected.sequence_number(uid) or 0 for uid in matched]
    returns = command.returns
    if returns is None and is_rev2:
        returns = frozenset({c.SearchReturn.ALL})  # RFC 9051 §6.4.4: IMAP4rev2 answers with ESEARCH
    reported = matched
    if matched and returns is not None and not returns & {c.SearchReturn.ALL, c.SearchReturn.COUNT}:
        # RFC 7162 §3.1.5: with only MIN and/or MAX, MODSEQ is the highest of the messages returned
        reported = [matched[0]] if c.SearchReturn.MIN in returns else []
        reported += [matched[-1]] if c.SearchReturn.MAX in returns else []
        reported = reported or matched
    modseq = max(selected.modseqs[uid] for uid in reported) if matched and search.uses_modseq(criteria) else None
    if returns is None:
        out.send(SearchData(numbers=numbers, modseq=modseq))
        return None
    new_saved: list[int] | None = None
    if c.SearchReturn.SAVE in returns:  # RFC 5182 §2.1: with only MIN/MAX, save just those
        new_saved = matched
        if matched and not returns & {c.SearchReturn.ALL, c.SearchReturn.COUNT}:
            picks: set[int] = set()
            if c.SearchReturn.MIN in returns:
                picks.add(matched[0])
            if c.SearchReturn.MAX in returns:
                picks.add(matched[-1])
            new_saved = sorted(picks) if picks else matched
        if returns == {c.SearchReturn.SAVE}:
            return new_saved  # RFC 5182 §2.1: no ESEARCH response for SAVE alone
    out.send(
        ESearchData(
            tag=tag,
            is_uid=command.is_uid,
            min=min(numbers) if numbers and c.SearchReturn.MIN in returns else None,
            max=max(numbers) if numbers and c.SearchReturn.MAX in returns else None,
            all=numbers if c.SearchReturn.ALL in returns else None,
            count=len(numbers) if c.SearchReturn.COUNT in returns else None,
            modseq=modseq,
        )
    )
    return new_saved


# ---- STORE ----------------------------------------------------------------------------------------------


async def store_flags(
    context: Context,
    selected: Selected,
    command: c.Store,
    out: Output,
    *,
    saved: Sequence[int],
    is_condstore: bool,
) -> Code | None:
    """STORE; returns ``[MODIFIED ...]`` for messages changed since UNCHANGEDSINCE (RFC 7162 §3.1.3)."""
    if selected.is_read_only:
        raise Refusal.no("mailbox is read-only", "CANNOT")
    uids = selected.live(selected.resolve(command.sequence_set, is_uid=command.is_uid, saved=saved))
    flags = frozenset(flag for flag in command.flags if flag.upper() != "\\RECENT")
    result = await context.store.store_flags(
        selected.mailbox_id,
        uids,
        op=_FLAG_OPS[command.mode],
        flags=flags,
        unchanged_since=command.unchanged_since,
    )
    for update in result.updated:
        selected.set_flags(update.uid, update.flags, update.modseq)
    if context.learner is not None and result.updated and command.mode is not c.StoreMode.REMOVE:
        _learn_from_keywords(context, selected, flags, [update.uid for update in result.updated])
    for response in selected.keyword_updates(update.uid for update in result.updated):
        out.send(response)
    failed = set(result.failed_unchangedsince)
    with_modseq = is_condstore or command.unchanged_since is not None
    updated = {update.uid for update in result.updated}
    for uid in uids:
        number = selected.sequence_number(uid)
        if number is None or uid in failed or uid not in selected.flags:
            continue
        if command.is_silent and not (with_modseq and uid in updated):
            continue
        items: list[tuple[bytes, bytes]] = []
        if command.is_uid:
            items.append((b"UID", b"%d" % uid))
        if not command.is_silent:
            items.append((b"FLAGS", render_flags(sorted(selected.visible_flags(uid)))))
        if with_modseq:
            items.append((b"MODSEQ", b"(%d)" % selected.modseqs[uid]))
        out.send(FetchData(sequence_number=number, items=items))
    if not failed:
        return None
    if command.is_uid:
        return Code(name="MODIFIED", value=compress(sorted(failed)).encode())
    numbers = sorted(selected.sequence_number(uid) or 0 for uid in failed)
    return Code(name="MODIFIED", value=compress(numbers).encode())


# ---- COPY, MOVE, EXPUNGE -------------------------------------------------------------------------------


async def copy(
    context: Context,
    account_id: int,
    selected: Selected,
    command: c.Copy,
    out: Output,
    *,
    saved: Sequence[int],
    is_qresync: bool,
) -> Code | None:
    """COPY or MOVE; returns the ``[COPYUID ...]`` of the tagged OK (MOVE sends it untagged, RFC 6851 §4.3)."""
    store = context.store
    uids = selected.live(selected.resolve(command.sequence_set, is_uid=command.is_uid, saved=saved))
    target = await store.get_mailbox(account_id, check_name(command.mailbox))
    if target is None:
        raise Refusal.no("no such mailbox", "TRYCREATE")  # RFC 9051 §6.4.7
    if command.is_move and selected.is_read_only:
        raise Refusal.no("mailbox is read-only", "CANNOT")
    if not uids:
        return None
    try:
        if command.is_move:
            pairs = await store.move(selected.mailbox_id, uids, target.id)
        else:
            pairs = await store.copy(selected.mailbox_id, uids, target.id)
    except StoreError as exc:
        raise refusal_for(exc, is_target=True) from exc
    if not pairs:
        return None
    if context.learner is not None:
        _learn_from_copy(context, account_id, selected, target, [new for _, new in pairs])
    code = copyuid(target.uidvalidity, [source for source, _ in pairs], [new for _, new in pairs])
    if not command.is_move:
        return code
    out.send(Condition(status=Status.OK, code=code, text="moved"))
    for response in selected.remove([source for source, _ in pairs], is_qresync=is_qresync):
        out.send(response)
    return None


def _learn_from_copy(context: Context, account_id: int, selected: Selected, target: Mailbox, uids: list[int]) -> None:
    """Into Junk is "this is spam"; out of Junk, except into Trash, is "this is not spam"."""
    assert context.learner is not None
    if target.special_use is SpecialUse.JUNK and selected.special_use is not SpecialUse.JUNK:
        is_spam = True
    elif selected.special_use is SpecialUse.JUNK and target.special_use not in (SpecialUse.JUNK, SpecialUse.TRASH):
        is_spam = False
    else:
        return
    context.learner.learn(account_id=account_id, mailbox_id=target.id, uids=uids, is_spam=is_spam)


def _learn_from_keywords(context: Context, selected: Selected, flags: frozenset[str], uids: list[int]) -> None:
    """The $Junk and $NotJunk keywords (RFC 5788 registry; set by Thunderbird, Apple Mail and others)."""
    assert context.learner is not None
    lowered = {flag.lower() for flag in flags}
    if "$junk" in lowered:
        is_spam = True
    elif "$notjunk" in lowered:
        is_spam = False
    else:
        return
    context.learner.learn(account_id=selected.account_id, mailbox_id=selected.mailbox_id, uids=uids, is_spam=is_spam)


async def expunge(context: Context, selected: Selected, command: c.Expunge, out: Output, *, is_qresync: bool) -> None:
    if selected.is_read_only:
        raise Refusal.no("mailbox is read-only", "CANNOT")
    deleted = selected.live(uid for uid in selected.uids if DELETED in selected.flags[uid])
    if command.uids is not None:  # RFC 4315 §2.1: only those of the UID set
        wanted = set(selected.resolve(command.uids, is_uid=True))
        deleted = [uid for uid in deleted if uid in wanted]
    if not deleted:
        return
    removed = await context.store.expunge(selected.mailbox_id, deleted)
    for response in selected.remove(removed, is_qresync=is_qresync):
        out.send(response)


# ---- APPEND ----------------------------------------------------------------------------------------------


class Upload:
    """The messages of one APPEND command: each streams into a blob writer; all are stored at the end,
    in one transaction (RFC 3502 §6.3.11: all or none)."""

    def __init__(self, context: Context, *, account_id: int, mailbox: Mailbox, account: Account | None = None) -> None:
        self._context = context
        self._account = account  # as it was when APPEND began (for the quota warning check)
        self._account_id = account_id
        self.mailbox = mailbox
        self._writers: list[BlobWriter] = []
        self._messages: list[NewMessage] = []
        self._current: tuple[BlobWriter, AppendStart] | None = None
        self._held = 0  # octets of uncommitted messages held in memory

    def start(self, event: AppendStart) -> None:
        self._current = (self._context.blobs.create(), event)

    def write(self, data: bytes) -> None:
        if self._current is not None:
            self._current[0].write(data)

    async def end_message(self) -> None:
        assert self._current is not None
        writer, event = self._current
        self._current = None
        structure = parse_blob(writer)
        if structure is None:  # spilled to disk: make it durable first, then parse the file
            ref = await writer.commit()
            structure = await asyncio.to_thread(parse_file, self._context.blobs.path(ref.id))
        elif self._held + writer.ref.size > _MAX_HELD:  # MULTIAPPEND: bound what waits in memory
            await writer.commit()
        else:
            self._held += writer.ref.size
            self._writers.append(writer)  # made durable with the metadata, in one round trip
        ref = writer.ref
        date: datetime = event.date or self._context.settings.now()
        flags = frozenset(flag for flag in event.flags if flag.upper() != "\\RECENT")
        self._messages.append(
            NewMessage(
                account_id=self._account_id,
                mailbox_id=self.mailbox.id,
                blob_id=ref.id,
                size=ref.size,
                structure=structure,
                flags=flags,
                internal_date=date,
            )
        )

    async def commit(self) -> Code:
        try:
            appended = await self._context.store.append(self._messages, blobs=self._writers)
        except StoreError as exc:
            self.abort()
            raise refusal_for(exc, is_target=True) from exc
        self._writers = []
        if self._account is not None:
            self._context.on_stored([self._account], sum(message.size for message in self._messages))
        return appenduid(self.mailbox.uidvalidity, [item.uid for item in appended])

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
        if self._current is not None:
            self._current[0].abort()
        self._writers = []
        self._current = None


async def open_upload(context: Context, account_id: int, event: AppendStart) -> Upload:
    """Check the target of APPEND before its first message is read: NO [TRYCREATE], NO [OVERQUOTA]."""
    mailbox = await context.store.get_mailbox(account_id, check_name(event.mailbox))
    if mailbox is None:
        raise Refusal.no("no such mailbox", "TRYCREATE")  # RFC 9051 §6.3.12
    account = await context.store.get_account_by_id(account_id)
    if account is not None and account.quota_bytes and account.used_bytes + event.size > account.quota_bytes:
        raise Refusal.no("quota exceeded", "OVERQUOTA")  # RFC 9208 §4.3
    return Upload(context, account_id=account_id, mailbox=mailbox, account=account)
