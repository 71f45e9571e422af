"""Mailboxes, messages and the change log in SQLite.

UIDs and MODSEQs come from the mailbox row, incremented inside the writer's transaction, so concurrent
appends get strictly increasing UIDs with no gaps (a rolled-back job rolls its increment back too).
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pochta.store.api import (
    HIERARCHY_SEPARATOR,
    INBOX,
    AlreadyExists,
    Appended,
    BlobWriter,
    Change,
    ChangeKind,
    Conflict,
    FlagOp,
    FlagResult,
    FlagUpdate,
    Mailbox,
    Message,
    NewMessage,
    NotFound,
    OverQuota,
    SpecialUse,
)
from pochta.store.sqlite.engine import QUICK_ROWS, Engine, WriteResult

SEEN = "\\Seen"
_MAILBOX_COLUMNS = (
    "id, account_id, name, special_use,"
    " EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name),"
    " uidvalidity, uidnext, highestmodseq, messages, unseen, size"
)
_MESSAGE_COLUMNS = "mailbox_id, uid, modseq, flags, internal_date, save_date, size, blob_id"


def _mailbox(row: tuple[Any, ...]) -> Mailbox:
    return Mailbox(
        id=row[0],
        account_id=row[1],
        name=row[2],
        special_use=SpecialUse(row[3]) if row[3] else None,
        is_subscribed=bool(row[4]),
        uidvalidity=row[5],
        uidnext=row[6],
        highestmodseq=row[7],
        messages=row[8],
        unseen=row[9],
        size=row[10],
    )


def _message(row: tuple[Any, ...]) -> Message:
    return Message(
        mailbox_id=row[0],
        uid=row[1],
        modseq=row[2],
        flags=_flags(row[3]),
        internal_date=datetime.fromtimestamp(row[4], UTC),
        save_date=datetime.fromtimestamp(row[5], UTC),
        size=row[6],
        blob_id=row[7],
        structure=bytes(row[8]) if len(row) > 8 else None,
        envelope=bytes(row[9]) if len(row) > 9 and row[9] is not None else None,
    )


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def _flag_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def _next_uidvalidity(conn: sqlite3.Connection) -> int:
    # RFC 9051 §2.3.1.1: a mailbox re-created under an old name must get a new UIDVALIDITY; one counter
    # for the whole store, starting at the clock so a restored database does not reuse old values.
    row = conn.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
    value = max((row[0] + 1) if row else 1, int(time.time()) & 0xFFFFFFFF)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('uidvalidity', ?)", (value,))
    return value


def insert_mailbox(
    conn: sqlite3.Connection, account_id: int, name: str, *, special_use: SpecialUse | None, subscribe: bool
) -> int:
    try:
        cursor = conn.execute(
            "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?,?,?,?)",
            (account_id, name, special_use.value if special_use else None, _next_uidvalidity(conn)),
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(f"mailbox {name} exists") from exc
    if subscribe:
        conn.execute("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)", (account_id, name))
    return int(cursor.lastrowid or 0)


def _mailbox_row(conn: sqlite3.Connection, mailbox_id: int) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return tuple(row)


def _allocate(conn: sqlite3.Connection, mailbox_id: int, *, uids: int) -> tuple[int, int, int]:
    """Reserve `uids` UIDs and one new MODSEQ; returns (first uid, modseq, account id)."""
    row = conn.execute(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 WHERE id = ?"
        " RETURNING uidnext - ?, highestmodseq, account_id",
        (uids, mailbox_id, uids),
    ).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return int(row[0]), int(row[1]), int(row[2])


def _bump_modseq(conn: sqlite3.Connection, mailbox_id: int) -> tuple[int, int]:
    _, modseq, account_id = _allocate(conn, mailbox_id, uids=0)
    return modseq, account_id


def _charge(conn: sqlite3.Connection, account_id: int, size: int) -> None:
    """Add `size` octets to the account's usage, refusing what would pass its quota. One statement in the
    common case: every statement of a delivery is a hand-over of the GIL between the writer thread and
    the event loop, so the check is in the UPDATE and the SELECT only says why it changed nothing."""
    changed = conn.execute(
        "UPDATE accounts SET used_bytes = max(0, used_bytes + ?)"
        " WHERE id = ? AND (? <= 0 OR quota_bytes = 0 OR used_bytes + ? <= quota_bytes) RETURNING id",
        (size, account_id, size, size),
    ).fetchone()
    if changed is not None:
        return
    row = conn.execute("SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        raise NotFound(f"no account {account_id}")
    quota, used = row
    raise OverQuota(account_id, quota=quota, used=used, size=size)


def _count(conn: sqlite3.Connection, mailbox_id: int, *, messages: int, unseen: int, size: int) -> None:
    conn.execute(
        "UPDATE mailboxes SET messages = messages + ?, unseen = unseen + ?, size = size + ? WHERE id = ?",
        (messages, unseen, size, mailbox_id),
    )


def _insert_messages(
    conn: sqlite3.Connection, mailbox_id: int, rows: Sequence[tuple[str, int, int, int, str, bytes, bytes | None]]
) -> tuple[list[int], int, int, int]:
    """Insert (flags, internal_date, save_date, size, blob_id, structure, envelope) rows.

    Returns the new UIDs, their MODSEQ, the mailbox's account and its UIDVALIDITY. The UIDs, the MODSEQ
    and the counts are taken in one UPDATE (see _charge for why statements are worth saving)."""
    unseen = sum(1 for row in rows if SEEN not in _flags(row[0]))
    found = conn.execute(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1, messages = messages + ?,"
        " unseen = unseen + ?, size = size + ? WHERE id = ? RETURNING uidnext - ?, highestmodseq, account_id,"
        " uidvalidity",
        (len(rows), len(rows), unseen, sum(row[3] for row in rows), mailbox_id, len(rows)),
    ).fetchone()
    if found is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    first_uid, modseq, account_id, uidvalidity = (int(value) for value in found)
    conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, save_date, size, blob_id,"
        " structure, envelope) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [(mailbox_id, first_uid + i, modseq, *row) for i, row in enumerate(rows)],
    )
    return [first_uid + i for i in range(len(rows))], modseq, account_id, uidvalidity


def _delete_messages(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int], *, is_kept: bool = False
) -> tuple[list[int], int]:
    """Expunge `uids` that exist, leaving tombstones; returns (removed uids, account id).

    ``is_kept``: an expunge (not the second half of a move): the messages go to the undelete bin."""
    found = _select_messages(conn, mailbox_id, uids)
    if not found:
        return [], int(_mailbox_row(conn, mailbox_id)[1])
    modseq, account_id = _bump_modseq(conn, mailbox_id)
    removed = [row[1] for row in found]
    if is_kept:
        keep_deleted(conn, mailbox_id, removed)
    conn.executemany("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", [(mailbox_id, uid) for uid in removed])
    conn.executemany(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
        [(mailbox_id, uid, modseq) for uid in removed],
    )
    size = sum(row[6] for row in found)
    unseen = sum(1 for row in found if SEEN not in _flags(row[3]))
    _count(conn, mailbox_id, messages=-len(found), unseen=-unseen, size=-size)
    _charge(conn, account_id, -size)
    return removed, account_id


def keep_deleted(conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None) -> None:
    """Copy messages about to be expunged (all of the mailbox when `uids` is None) into the undelete bin."""
    select = (
        "INSERT INTO deleted_messages (account_id, mailbox, flags, internal_date, expunged, size, blob_id,"
        " structure, envelope) SELECT b.account_id, b.name, m.flags, m.internal_date, ?, m.size, m.blob_id,"
        " m.structure, m.envelope FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.mailbox_id = ?"
    )
    now = int(time.time())
    if uids is None:
        conn.execute(select, (now, mailbox_id))
        return
    for start in range(0, len(uids), 500):  # stay under SQLite's bound-parameter limit
        chunk = uids[start : start + 500]
        conn.execute(f"{select} AND m.uid IN ({','.join('?' * len(chunk))})", (now, mailbox_id, *chunk))


def _select_messages(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None, *, with_structure: bool = False
) -> list[tuple[Any, ...]]:
    columns = _MESSAGE_COLUMNS + (", structure, envelope" if with_structure else "")
    if uids is None:
        return conn.execute(
            f"SELECT {columns} FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
        ).fetchall()
    wanted = sorted(set(uids))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT {columns} FROM messages WHERE mailbox_id = ? AND uid IN ({marks}) ORDER BY uid",
            (mailbox_id, *chunk),
        ).fetchall()
    return rows


def _copy_rows(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int], target_id: int
) -> tuple[list[tuple[int, int]], set[int]]:
    source = _select_messages(conn, mailbox_id, uids, with_structure=True)
    if not source:
        return [], set()
    target_account = int(_mailbox_row(conn, target_id)[1])
    _charge(conn, target_account, sum(row[6] for row in source))
    now = int(time.time())
    new_uids, _, account_id, _ = _insert_messages(
        conn, target_id, [(row[3], row[4], now, row[6], row[7], row[8], row[9]) for row in source]
    )
    return [(row[1], uid) for row, uid in zip(source, new_uids, strict=True)], {account_id}


def _move_rows(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int], target_id: int
) -> tuple[list[tuple[int, int]], set[int]]:
    source_account = int(_mailbox_row(conn, mailbox_id)[1])
    same_account = source_account == int(_mailbox_row(conn, target_id)[1])
    size = sum(row[6] for row in _select_messages(conn, mailbox_id, uids))
    if same_account:  # a move inside one account needs no headroom: credit first, the delete debits back
        _charge(conn, source_account, -size)
    pairs, touched = _copy_rows(conn, mailbox_id, uids, target_id)
    _delete_messages(conn, mailbox_id, [source for source, _ in pairs])
    if same_account:
        _charge(conn, source_account, size)
    return pairs, touched | {source_account}


def append_rows(conn: sqlite3.Connection, messages: Sequence[NewMessage]) -> tuple[list[Appended], set[int]]:
    """Append `messages` inside the caller's transaction; returns them and the accounts touched."""
    per_account: dict[int, int] = defaultdict(int)
    for message in messages:
        per_account[message.account_id] += message.size
    for account_id, size in per_account.items():
        _charge(conn, account_id, size)
    now = int(time.time())
    results: list[Appended] = []
    for message in messages:
        (uid,), modseq, account_id, uidvalidity = _insert_messages(
            conn,
            message.mailbox_id,
            [
                (
                    _flag_text(message.flags),
                    int(message.internal_date.timestamp()),
                    now,
                    message.size,
                    message.blob_id,
                    message.structure,
                    message.envelope,
                )
            ],
        )
        if account_id != message.account_id:  # raising undoes the insert with the rest of the write
            raise NotFound(f"no mailbox {message.mailbox_id} for account {message.account_id}")
        results.append(Appended(mailbox_id=message.mailbox_id, uid=uid, modseq=modseq, uidvalidity=uidvalidity))
    return results, set(per_account)


class SqliteMailboxes:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def create_mailbox(
        self, account_id: int, name: str, *, special_use: SpecialUse | None = None, subscribe: bool = True
    ) -> Mailbox:
        def run(conn: sqlite3.Connection) -> WriteResult[Mailbox]:
            if name.upper() == INBOX:
                raise AlreadyExists("INBOX always exists")
            mailbox_id = insert_mailbox(conn, account_id, name, special_use=special_use, subscribe=subscribe)
            return WriteResult(_mailbox(_mailbox_row(conn, mailbox_id)), touched={account_id})

        return await self._db.write(run)

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if name == INBOX:
                raise Conflict("INBOX cannot be deleted")  # RFC 9051 §6.3.9
            row = conn.execute(
                "SELECT id, size FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {name}")
            _charge(conn, account_id, -int(row[1]))
            keep_deleted(conn, row[0], None)
            conn.execute("DELETE FROM mailboxes WHERE id = ?", (row[0],))
            return WriteResult(None, touched={account_id})

        await self._db.write(run)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if new == INBOX:
                raise AlreadyExists("INBOX always exists")
            if new.startswith(old + HIERARCHY_SEPARATOR):
                raise Conflict("a mailbox cannot be renamed into itself")
            row = conn.execute(
                f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
                (account_id, old),
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {old}")
            if conn.execute("SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, new)).fetchone():
                raise AlreadyExists(f"mailbox {new} exists")
            if old == INBOX:
                # RFC 9051 §6.3.10: renaming INBOX moves its messages to the new name; INBOX stays, empty
                target = insert_mailbox(conn, account_id, new, special_use=None, subscribe=True)
                _move_rows(conn, row[0], [r[1] for r in _select_messages(conn, row[0], None)], target)
                return WriteResult(None, touched={account_id})
            children = conn.execute(
                "SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?",
                (account_id, len(old) + 1, old + HIERARCHY_SEPARATOR),
            ).fetchall()
            conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new, row[0]))
            for child_id, child_name in children:
                conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new + child_name[len(old) :], child_id))
            # the subscriptions follow the mailboxes they name (as Dovecot does)
            for moved in (old, *(name for _, name in children)):
                cursor = conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, moved)
                )
                if cursor.rowcount:
                    conn.execute(
                        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                        (account_id, new + moved[len(old) :]),
                    )
            return WriteResult(None, touched={account_id})

        await self._db.write(run)

    async def set_subscribed(self, account_id: int, name: str, *, is_subscribed: bool) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if is_subscribed:
                conn.execute("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)", (account_id, name))
            else:
                conn.execute("DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name))
            return WriteResult(None, touched={account_id})

        await self._db.write(run)

    async def subscriptions(self, account_id: int) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,))
            return [row[0] for row in rows]

        return await self._db.read(run)

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        def run(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(
                f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
                (account_id, name),
            ).fetchone()
            return _mailbox(row) if row else None

        return await self._db.read(run)

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        def run(conn: sqlite3.Connection) -> list[Mailbox]:
            rows = conn.execute(
                f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name", (account_id,)
            ).fetchall()
            return [_mailbox(row) for row in rows]

        return await self._db.read(run)

    async def append(self, messages: Sequence[NewMessage], *, blobs: Sequence[BlobWriter] = ()) -> list[Appended]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[Appended]]:
            results, touched = append_rows(conn, messages)
            return WriteResult(results, touched=touched)

        return await self._db.write(run, blobs=blobs, is_quick=len(messages) <= QUICK_ROWS)

    async def messages(
        self, mailbox_id: int, *, uids: Sequence[int] | None = None, with_structure: bool = False
    ) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            return [_message(row) for row in _select_messages(conn, mailbox_id, uids, with_structure=with_structure)]

        return await self._db.read(run)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        op: FlagOp,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> FlagResult:
        def run(conn: sqlite3.Connection) -> WriteResult[FlagResult]:
            changes: list[tuple[int, frozenset[str], frozenset[str]]] = []
            failed: list[int] = []
            for row in _select_messages(conn, mailbox_id, uids):
                uid, old = row[1], _flags(row[3])
                if unchanged_since is not None and row[2] > unchanged_since:
                    failed.append(uid)  # RFC 7162 §3.1.3
                    continue
                new = flags if op is FlagOp.SET else (old | flags if op is FlagOp.ADD else old - flags)
                if new != old:
                    changes.append((uid, old, new))
            if not changes:
                return WriteResult(FlagResult(updated=[], failed_unchangedsince=failed))
            modseq, account_id = _bump_modseq(conn, mailbox_id)
            conn.executemany(
                "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                [(_flag_text(new), modseq, mailbox_id, uid) for uid, _, new in changes],
            )
            unseen_delta = sum((SEEN in old) - (SEEN in new) for _, old, new in changes)
            _count(conn, mailbox_id, messages=0, unseen=unseen_delta, size=0)
            updated = [FlagUpdate(uid=uid, modseq=modseq, flags=new) for uid, _, new in changes]
            return WriteResult(FlagResult(updated=updated, failed_unchangedsince=failed), touched={account_id})

        return await self._db.write(run)

    async def copy(self, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[tuple[int, int]]]:
            pairs, touched = _copy_rows(conn, mailbox_id, uids, target_id)
            return WriteResult(pairs, touched=touched)

        return await self._db.write(run)

    async def move(self, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[tuple[int, int]]]:
            pairs, touched = _move_rows(conn, mailbox_id, uids, target_id)
            return WriteResult(pairs, touched=touched)

        return await self._db.write(run)

    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        def run(conn: sqlite3.Connection) -> WriteResult[list[int]]:
            removed, account_id = _delete_messages(conn, mailbox_id, uids, is_kept=True)
            return WriteResult(removed, touched={account_id} if removed else set())

        return await self._db.write(run)

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[Change]:
        def run(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute(
                "SELECT uid, modseq, 'message', flags FROM messages WHERE mailbox_id = ? AND modseq > ?"
                " UNION ALL SELECT uid, modseq, 'expunge', '' FROM expunged WHERE mailbox_id = ? AND modseq > ?"
                " ORDER BY 2, 1",
                (mailbox_id, modseq, mailbox_id, modseq),
            ).fetchall()
            return [
                Change(mailbox_id=mailbox_id, uid=r[0], modseq=r[1], kind=ChangeKind(r[2]), flags=_flags(r[3]))
                for r in rows
            ]

        return await self._db.read(run)
