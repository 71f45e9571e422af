"""Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE
(RFC 9051 §6.3; RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE, RFC 3348 CHILDREN).

Every name is checked by :func:`check_name` before it reaches the store, and every store call takes
the session's own account id, so a user reaches only their own mailboxes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pochta.proto.imap import commands as c
from pochta.proto.imap.responses import ListData, NamespaceData, RawData, Response, StatusData, render_mailbox
from pochta.store.api import HIERARCHY_SEPARATOR, INBOX, Mailbox, Mailboxes, SpecialUse

from .recent import RecentClaims
from .refusal import Refusal

SEPARATOR = HIERARCHY_SEPARATOR
MAX_NAME = 1000  # octets of a full mailbox name
MAX_DEPTH = 30  # hierarchy levels
_SPECIAL_USES = {use.value.upper(): use for use in SpecialUse}
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f%*]")


def check_name(name: str, *, is_create: bool = False) -> str:
    """``name`` if it can be a mailbox; else NO [CANNOT]. CREATE may end with the separator (RFC 9051 §6.3.4)."""
    if is_create and name.endswith(SEPARATOR) and len(name) > 1:
        name = name[:-1]
    parts = name.split(SEPARATOR)
    if (
        not name
        or len(name.encode()) > MAX_NAME
        or len(parts) > MAX_DEPTH
        or any(not part or part.strip() != part or part in (".", "..") for part in parts)
        or _FORBIDDEN.search(name)
    ):
        raise Refusal.no("invalid mailbox name", "CANNOT")
    return INBOX if name.upper() == INBOX else name


def special_use_of(uses: Sequence[str]) -> SpecialUse | None:
    """The one special use CREATE asked for (RFC 6154 §3); more than one, or an unknown one: NO [USEATTR]."""
    if not uses:
        return None
    if len(uses) > 1 or uses[0].upper() not in _SPECIAL_USES:
        raise Refusal.no("unsupported special use", "USEATTR")
    return _SPECIAL_USES[uses[0].upper()]


async def create(store: Mailboxes, account_id: int, command: c.Create) -> Mailbox:
    name = check_name(command.mailbox, is_create=True)
    if name == INBOX:
        raise Refusal.no("INBOX always exists", "ALREADYEXISTS")
    use = special_use_of(command.special_use)
    existing = {mailbox.name for mailbox in await store.list_mailboxes(account_id)}
    parts = name.split(SEPARATOR)
    for depth in range(1, len(parts)):  # RFC 9051 §6.3.4: create the missing superiors too
        parent = SEPARATOR.join(parts[:depth])
        if parent not in existing:
            await store.create_mailbox(account_id, parent, subscribe=False)
    # RFC 9051 §6.3.4 does not subscribe a created mailbox (nor does Dovecot); only the defaults are subscribed
    return await store.create_mailbox(account_id, name, special_use=use, subscribe=False)


async def delete(store: Mailboxes, account_id: int, name: str) -> None:
    name = check_name(name)
    if name == INBOX:
        raise Refusal.no("INBOX cannot be deleted", "CANNOT")
    # RFC 9051 §6.3.5: the children stay; the name lives on in LIST as \Noselect (\NonExistent) parent
    await store.delete_mailbox(account_id, name)


async def rename(store: Mailboxes, account_id: int, command: c.Rename) -> None:
    old, new = check_name(command.mailbox), check_name(command.new_name, is_create=True)
    if old == new:
        raise Refusal.no("same name", "ALREADYEXISTS")
    existing = {mailbox.name for mailbox in await store.list_mailboxes(account_id)}
    if old not in existing:
        raise Refusal.no("no such mailbox", "NONEXISTENT")
    if new in existing:
        raise Refusal.no("mailbox already exists", "ALREADYEXISTS")
    parts = new.split(SEPARATOR)
    for depth in range(1, len(parts)):  # RFC 9051 §6.3.6: create the missing superiors of the new name
        parent = SEPARATOR.join(parts[:depth])
        if parent not in existing and parent != old:
            await store.create_mailbox(account_id, parent, subscribe=False)
    await store.rename_mailbox(account_id, old, new)


async def subscribe(store: Mailboxes, account_id: int, name: str, *, is_subscribed: bool) -> None:
    await store.set_subscribed(account_id, check_name(name), is_subscribed=is_subscribed)


def namespace() -> NamespaceData:
    return NamespaceData(personal=(("", SEPARATOR),))  # RFC 2342: one personal namespace, no prefix


# ---- LIST and LSUB -------------------------------------------------------------------------------------


class _Pattern:
    """RFC 9051 §6.3.9: ``*`` matches anything, ``%`` anything but the separator; INBOX in any case."""

    def __init__(self, reference: str, pattern: str) -> None:
        text = pattern if pattern.startswith(SEPARATOR) or not reference else reference + pattern
        regex = "".join("[^/]*" if char == "%" else ".*" if char == "*" else re.escape(char) for char in text)
        self._exact = re.compile(regex, re.DOTALL)
        self._any_case = re.compile(regex, re.DOTALL | re.IGNORECASE)

    def matches(self, name: str) -> bool:
        if name == INBOX:
            return self._any_case.fullmatch(name) is not None
        return self._exact.fullmatch(name) is not None


@dataclass(slots=True)
class _Node:
    name: str
    mailbox: Mailbox | None  # None: implied by a child or a subscription, does not exist itself
    is_subscribed: bool = False


def _tree(mailboxes: Sequence[Mailbox], subscribed: Sequence[str]) -> dict[str, _Node]:
    nodes = {mailbox.name: _Node(mailbox.name, mailbox) for mailbox in mailboxes}
    for name in subscribed:  # RFC 9051 §6.3.7: a subscription outlives its mailbox
        nodes.setdefault(name, _Node(name, None)).is_subscribed = True
    for mailbox in mailboxes:
        parts = mailbox.name.split(SEPARATOR)
        for depth in range(1, len(parts)):
            parent = SEPARATOR.join(parts[:depth])
            nodes.setdefault(parent, _Node(parent, None))
    return nodes


def _has_children(name: str, nodes: dict[str, _Node]) -> bool:
    prefix = name + SEPARATOR
    return any(other.startswith(prefix) and node.mailbox is not None for other, node in nodes.items())


async def list_mailboxes(
    store: Mailboxes,
    account_id: int,
    command: c.List,
    *,
    status_items: Sequence[c.StatusItem] = (),
    is_utf8: bool = False,
) -> list[Response]:
    """The LIST responses (and LIST-STATUS STATUS responses) for ``command``."""
    if command.patterns == ("",) and not command.is_extended:
        return [ListData(attributes=("\\Noselect",), delimiter=SEPARATOR, mailbox="")]  # RFC 9051 §6.3.9
    mailboxes = await store.list_mailboxes(account_id)
    selection = command.selection
    returns = command.returns
    is_subscribed_only = c.ListSelection.SUBSCRIBED in selection
    show_subscribed = is_subscribed_only or c.ListReturn.SUBSCRIBED in returns
    subscribed = await store.subscriptions(account_id) if show_subscribed else []
    # RFC 5258 §3.1: names subscribed without a mailbox are listed only by the SUBSCRIBED selection
    nodes = _tree(mailboxes, subscribed if is_subscribed_only else ())
    for name in subscribed:
        if name in nodes:
            nodes[name].is_subscribed = True
    patterns = [_Pattern(command.reference, pattern) for pattern in command.patterns if pattern]
    out: list[Response] = []
    for name in sorted(nodes, key=lambda n: (n != INBOX, n)):
        if not any(pattern.matches(name) for pattern in patterns):
            continue
        node = nodes[name]
        mailbox = node.mailbox
        child_info: tuple[str, ...] = ()
        if is_subscribed_only and not node.is_subscribed:
            if c.ListSelection.RECURSIVEMATCH in selection and any(
                other.is_subscribed
                and other.name.startswith(name + SEPARATOR)
                and not any(pattern.matches(other.name) for pattern in patterns)
                for other in nodes.values()
            ):
                child_info = ("SUBSCRIBED",)  # RFC 5258 §3.5: for a child the patterns do not list itself
            else:
                continue
        if c.ListSelection.SPECIAL_USE in selection and (mailbox is None or mailbox.special_use is None):
            continue
        attributes: list[str] = []
        if mailbox is None:
            attributes += ["\\NonExistent"] if command.is_extended else ["\\Noselect"]
        attributes.append("\\HasChildren" if _has_children(name, nodes) else "\\HasNoChildren")
        if show_subscribed and node.is_subscribed:
            attributes.append("\\Subscribed")
        if mailbox is not None and mailbox.special_use is not None:
            attributes.append(mailbox.special_use.value)
        out.append(ListData(attributes=tuple(attributes), delimiter=SEPARATOR, mailbox=name, child_info=child_info))
        if status_items and mailbox is not None:
            out.append(status_data(mailbox, status_items, deleted=None, is_utf8=is_utf8))
    return out


async def lsub(store: Mailboxes, account_id: int, command: c.Lsub) -> list[Response]:
    if not command.pattern:
        return [ListData(attributes=("\\Noselect",), delimiter=SEPARATOR, mailbox="", is_lsub=True)]
    pattern = _Pattern(command.reference, command.pattern)
    subscribed = set(await store.subscriptions(account_id))
    found: dict[str, tuple[str, ...]] = {}
    for name in subscribed:
        if pattern.matches(name):
            found[name] = ()
            continue
        parts = name.split(SEPARATOR)
        for depth in range(1, len(parts)):
            # RFC 3501 §6.3.9: with "%", a parent of a subscribed mailbox is listed as \Noselect
            # when it is not subscribed itself
            parent = SEPARATOR.join(parts[:depth])
            if parent not in subscribed and pattern.matches(parent):
                found[parent] = ("\\Noselect",)
    return [
        ListData(attributes=found[name], delimiter=SEPARATOR, mailbox=name, is_lsub=True)
        for name in sorted(found, key=lambda n: (n != INBOX, n))
    ]


# ---- STATUS ----------------------------------------------------------------------------------------------


def mailbox_id(mailbox: Mailbox) -> str:
    """The MAILBOXID (RFC 8474 §4): kept across RENAME, new when a name is created again."""
    return f"F{mailbox.id}"


def status_data(
    mailbox: Mailbox,
    items: Sequence[c.StatusItem],
    *,
    deleted: int | None,
    deleted_storage: int | None = None,
    is_utf8: bool,
    append_limit: int = 0,
    recent: int = 0,
) -> Response:
    values: list[tuple[str, int]] = []
    for item in items:
        match item:
            case c.StatusItem.MESSAGES:
                values.append((item.value, mailbox.messages))
            case c.StatusItem.UIDNEXT:
                values.append((item.value, mailbox.uidnext))
            case c.StatusItem.UIDVALIDITY:
                values.append((item.value, mailbox.uidvalidity))
            case c.StatusItem.UNSEEN:
                values.append((item.value, mailbox.unseen))
            case c.StatusItem.SIZE:
                values.append((item.value, mailbox.size))
            case c.StatusItem.RECENT:
                values.append((item.value, recent))
            case c.StatusItem.HIGHESTMODSEQ:
                values.append((item.value, mailbox.highestmodseq))
            case c.StatusItem.DELETED if deleted is not None:
                values.append((item.value, deleted))
            case c.StatusItem.DELETED_STORAGE if deleted_storage is not None:
                values.append((item.value, deleted_storage // 1024))  # RFC 9208 §4.3: in units of 1024 octets
            case c.StatusItem.APPENDLIMIT if append_limit:
                values.append((item.value, append_limit))
            case _:
                pass
    if c.StatusItem.MAILBOXID not in items:
        return StatusData(mailbox=mailbox.name, items=values)
    words = [b"%s %d" % (name.encode(), value) for name, value in values]  # RFC 8474 §4.2: not a number
    words.append(b"MAILBOXID (%s)" % mailbox_id(mailbox).encode())
    return RawData(data=b"STATUS %s (%s)" % (render_mailbox(mailbox.name, is_utf8=is_utf8), b" ".join(words)))


async def status(
    store: Mailboxes,
    account_id: int,
    command: c.Status,
    *,
    append_limit: int,
    is_utf8: bool,
    recent: RecentClaims,
) -> Response:
    name = check_name(command.mailbox)
    mailbox = await store.get_mailbox(account_id, name)
    if mailbox is None:
        raise Refusal.no("no such mailbox", "NONEXISTENT")
    deleted: int | None = None
    deleted_storage: int | None = None
    recent_count = 0
    wanted = {c.StatusItem.DELETED, c.StatusItem.DELETED_STORAGE, c.StatusItem.RECENT}
    if wanted.intersection(command.items):
        messages = await store.messages(mailbox.id)
        deleted = sum(1 for message in messages if "\\Deleted" in message.flags)
        deleted_storage = sum(message.size for message in messages if "\\Deleted" in message.flags)
        recent_count = recent.count(mailbox, messages)
    return status_data(
        mailbox,
        command.items,
        deleted=deleted,
        deleted_storage=deleted_storage,
        is_utf8=is_utf8,
        append_limit=append_limit,
        recent=recent_count,
    )
