"""What a Sieve run reads (:class:`MessageView`, :class:`Environment`) and what it gives back (:class:`Result`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageView:
    """The message one run is for."""

    content: bytes  # the whole message, header and body
    envelope_from: str  # "" for the null sender
    envelope_to: str  # the recipient this run is for, as given (with its +detail)
    size: int


def _never(*_: object) -> bool:
    return False


def _no_script(_name: str, _is_global: bool) -> str | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """The world the script runs in; the callables are the caller's state (mailboxes, duplicate and
    vacation records, stored scripts). The runtime only asks; the caller records after delivery."""

    now: dt.datetime  # aware; currentdate and the date test's default zone use its offset
    user: str  # the account's address (vacation's :from default and "is this for me")
    my_addresses: frozenset[str] = frozenset()  # the account's other addresses (aliases)
    domain: str = ""  # environment "domain"
    host: str = ""  # environment "host"
    facts: Mapping[str, str] = field(default_factory=dict)  # filter results: spamtest, virustest, spam.score...
    mailbox_exists: Callable[[str], bool] = _never
    special_use_exists: Callable[[str | None, str], bool] = _never  # (mailbox or any, "\\Junk") -> has it
    is_duplicate: Callable[[str, int], bool] = _never  # (id hash, seconds) -> seen within that time
    include: Callable[[str, bool], str | None] = _no_script  # (script name, is_global) -> source
    vacation_seen: Callable[[str, str, int], bool] = _never  # (sender, handle, seconds) -> replied lately
    remote_host: str = ""  # environment "remote-host" (the SMTP client's name)
    remote_ip: str = ""  # environment "remote-ip"
    extensions: frozenset[str] | None = None  # what included scripts may require (as parse(); None: all)
    max_actions: int = 64  # more actions than this is a run-time error
    max_redirects: int = 8  # more redirects than this is a run-time error (mail loops and abuse)


# --- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Keep:
    """Store into the user's inbox (RFC 5228 §4.3), with these IMAP flags (RFC 5232)."""

    flags: tuple[str, ...] = ()
    mailbox: str = "INBOX"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInto:
    """Store into ``mailbox`` (RFC 5228 §4.1); ``create`` makes it when missing (RFC 5490 §3.2).
    With ``special_use`` (RFC 8579 §4), the mailbox that has that special use wins over the name."""

    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False
    copy: bool = False  # RFC 3894: did not cancel the implicit keep
    special_use: str | None = None  # e.g. "\\Junk"


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """Forward, unchanged except for edited headers, to ``address`` (RFC 5228 §4.2)."""

    address: str
    copy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Discard:
    """The script discarded the message (RFC 5228 §4.4); other actions may still deliver it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """Refuse the message with ``reason`` (RFC 5429): at SMTP time when possible, else by a DSN/MDN.
    ``is_extended`` (ereject) asks for an SMTP-level refusal wherever possible."""

    reason: str
    is_extended: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Vacation:
    """Send this auto-reply (RFC 5230); the runtime has done the checks of its docstring already.

    The caller sends it from ``from_`` to ``to`` with ``Auto-Submitted: auto-replied``, ``In-Reply-To``
    and ``References`` from ``in_reply_to``/``references``, and records (to, handle) for ``seconds``.
    """

    to: str  # the envelope sender being answered
    subject: str
    body: str  # the reason: text, or a MIME entity when ``mime``
    from_: str
    handle: str
    seconds: int
    mime: bool = False
    addresses: tuple[str, ...] = ()
    in_reply_to: str = ""  # the original Message-ID, if any
    references: str = ""


Action = Keep | FileInto | Redirect | Discard | Reject | Vacation


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateId:
    """An id the duplicate test checked (RFC 7352 §3), for the caller to record once the message is
    delivered: a new id is stored with the delivery time; a known one gets its time renewed only when
    ``is_last`` (then its period counts from the latest copy, not the first)."""

    id: str  # SHA-256 hex of handle and value
    seconds: int
    is_last: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What to do with the message.

    ``actions`` is complete: when the implicit keep applies it is there as a :class:`Keep` (with the
    flags the script set) and ``implicit_keep`` is True. After a run-time error ``actions`` is just
    ``(Keep(),)`` and ``errors`` says what went wrong (for the user's log): mail is never lost.
    """

    actions: tuple[Action, ...]
    implicit_keep: bool
    implicit_keep_flags: tuple[str, ...] = ()
    edited_header: bytes | None = None  # editheader: the new header block (with its blank line) for every copy
    duplicate_ids: tuple[DuplicateId, ...] = ()  # duplicate test: ids to record once delivered
    errors: tuple[str, ...] = ()
