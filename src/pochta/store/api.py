"""The store's interface: small Protocols named after their consumers, the values they pass, their errors.

Two backends implement them: SQLite (embedded default, `store.sqlite`) and, later, PostgreSQL. The contract
tests in `tests/store/` run against the interface so every backend passes the same suite.

Conventions: every method is async; ids are ints; times are aware UTC datetimes; mailbox names are full
hierarchical names with ``/`` as the separator, ``INBOX`` spelled exactly so.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol

HIERARCHY_SEPARATOR = "/"
INBOX = "INBOX"


class StoreError(Exception):
    """The store could not do what was asked; the session answers with a temporary failure."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class OverQuota(StoreError):
    def __init__(self, account_id: int, *, quota: int, used: int, size: int) -> None:
        super().__init__(f"account {account_id} over quota: {used} + {size} > {quota}")
        self.account_id = account_id


class Conflict(StoreError):
    """A request that the store's state forbids (deleting INBOX, renaming onto a child...)."""


# ---- directory ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Domain:
    id: int
    name: str  # normalised A-label form


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramCredentials:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    id: int
    address: str  # local@domain, normalised
    domain_id: int
    password_hash: str  # argon2id PHC string
    scram: ScramCredentials | None
    quota_bytes: int  # 0: no limit
    used_bytes: int
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Alias:
    id: int
    address: str  # local@domain, or "@domain" for the domain's catch-all
    domain_id: int
    targets: tuple[str, ...]  # addresses, local or external


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str  # rsa-sha256 or ed25519-sha256
    private_key: str
    public_key: str
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """What `Directory.lookup` found, all in one read."""

    domains: frozenset[str]  # the asked domains that are served here
    accounts: Mapping[str, Account]  # by address
    aliases: Mapping[str, Alias]  # by address


class Directory(Protocol):
    """Domains, accounts and aliases: whom the mail is for."""

    async def lookup(self, addresses: Sequence[str], domains: Sequence[str]) -> Lookup:
        """Accounts and aliases with any of `addresses`, and which `domains` are ours, in one read
        (recipient resolution asks this once per alias level instead of once per candidate)."""
        ...

    async def add_domain(self, name: str) -> Domain: ...
    async def remove_domain(self, name: str) -> None: ...
    async def list_domains(self) -> list[Domain]: ...
    async def get_domain(self, name: str) -> Domain | None: ...

    async def add_account(
        self, address: str, *, password_hash: str, scram: ScramCredentials | None, quota_bytes: int = 0
    ) -> Account: ...
    async def set_password(self, address: str, *, password_hash: str, scram: ScramCredentials | None) -> None: ...
    async def set_quota(self, address: str, *, quota_bytes: int) -> None: ...
    async def remove_account(self, address: str) -> None: ...
    async def get_account(self, address: str) -> Account | None: ...
    async def get_account_by_id(self, account_id: int) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias: ...
    async def remove_alias(self, address: str) -> None: ...
    async def get_alias(self, address: str) -> Alias | None: ...
    async def list_aliases(self) -> list[Alias]: ...

    async def add_dkim_key(self, key: DkimKey) -> None: ...
    async def remove_dkim_key(self, domain: str, selector: str) -> None: ...
    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]: ...


# ---- mailboxes and messages -------------------------------------------------------------------------


class SpecialUse(enum.StrEnum):
    """RFC 6154 special-use attributes."""

    ALL = "\\All"
    ARCHIVE = "\\Archive"
    DRAFTS = "\\Drafts"
    FLAGGED = "\\Flagged"
    JUNK = "\\Junk"
    SENT = "\\Sent"
    TRASH = "\\Trash"


# What a new account starts with (RFC 6154 names as most clients expect them).
DEFAULT_MAILBOXES: tuple[tuple[str, SpecialUse | None], ...] = (
    (INBOX, None),
    ("Drafts", SpecialUse.DRAFTS),
    ("Sent", SpecialUse.SENT),
    ("Junk", SpecialUse.JUNK),
    ("Trash", SpecialUse.TRASH),
    ("Archive", SpecialUse.ARCHIVE),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    special_use: SpecialUse | None
    is_subscribed: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    messages: int
    unseen: int
    size: int  # octets of all messages (STATUS SIZE, RFC 8438)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMessage:
    """One message to append: the blob is already durable, the rest is metadata."""

    account_id: int
    mailbox_id: int
    blob_id: str
    size: int
    structure: bytes  # the MIME parse (mail.mime dumps), kept so FETCH never re-parses
    flags: frozenset[str] = frozenset()
    internal_date: datetime
    envelope: bytes | None = None  # the SMTP envelope (mail.envelope dumps) it arrived with


@dataclass(frozen=True, slots=True, kw_only=True)
class Appended:
    mailbox_id: int
    uid: int
    modseq: int
    uidvalidity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    save_date: datetime
    size: int
    blob_id: str  # also the OBJECTID EMAILID (RFC 8474): copies of the same octets share it
    structure: bytes | None = field(default=None, repr=False)  # only when asked for
    envelope: bytes | None = field(default=None, repr=False)  # with the structure, when it came by SMTP


class FlagOp(enum.Enum):
    SET = enum.auto()
    ADD = enum.auto()
    REMOVE = enum.auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagUpdate:
    uid: int
    modseq: int
    flags: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagResult:
    updated: list[FlagUpdate]
    failed_unchangedsince: list[int]  # UIDs whose modseq was above UNCHANGEDSINCE (RFC 7162 §3.1.3)


class Mailboxes(Protocol):
    """Folders and the messages in them."""

    async def create_mailbox(
        self, account_id: int, name: str, *, special_use: SpecialUse | None = None, subscribe: bool = True
    ) -> Mailbox: ...
    async def delete_mailbox(self, account_id: int, name: str) -> None: ...
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None: ...
    async def set_subscribed(self, account_id: int, name: str, *, is_subscribed: bool) -> None:
        """Subscribe a name, whether or not a mailbox has it (RFC 9051 §6.3.7)."""
        ...

    async def subscriptions(self, account_id: int) -> list[str]:
        """Every subscribed name, including those whose mailbox does not exist (any more)."""
        ...

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None: ...
    async def list_mailboxes(self, account_id: int) -> list[Mailbox]: ...

    async def append(self, messages: Sequence[NewMessage], *, blobs: Sequence[BlobWriter] = ()) -> list[Appended]:
        """Store all messages in one transaction, or none (OverQuota, NotFound). Durable on return.

        `blobs` not yet committed are made durable first, in the same round trip to the store."""
        ...

    async def messages(
        self, mailbox_id: int, *, uids: Sequence[int] | None = None, with_structure: bool = False
    ) -> list[Message]:
        """Messages in UID order: all, or those of `uids` that exist."""
        ...

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        op: FlagOp,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> FlagResult: ...
    async def copy(self, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
        """Copy messages; returns (source uid, new uid) pairs. Checks the target account's quota."""
        ...

    async def move(self, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]: ...
    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages; returns the UIDs removed. Each leaves a tombstone in the change log."""
        ...


# ---- change log -----------------------------------------------------------------------------------


class ChangeKind(enum.StrEnum):
    MESSAGE = "message"  # appended, or its flags changed: the message row carries the new MODSEQ
    EXPUNGE = "expunge"  # a tombstone: QRESYNC's VANISHED (RFC 7162 §3.2.10) reads these


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    mailbox_id: int
    modseq: int
    uid: int
    kind: ChangeKind
    flags: frozenset[str] = frozenset()  # a message's flags now (so IDLE needs no second read); none for EXPUNGE


class Changes(Protocol):
    """What changed, for IMAP sync (CONDSTORE/QRESYNC) and push (IDLE)."""

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[Change]:
        """Every message whose MODSEQ is above `modseq`, and every UID expunged after it, in MODSEQ order."""
        ...

    def watch(self, account_id: int) -> AsyncIterator[None]:
        """Yields once after each commit that touched the account (coalesced), made by this process or, once
        :meth:`hear_others` was called, by any other on the same store; never ends by itself."""
        ...

    def hear_others(self, on_queued: Callable[[], None]) -> None:
        """From now on, commits by other processes (or nodes) on this store wake this one's watchers, and
        `on_queued` is called when one of them queued mail (:meth:`announce_queued`)."""
        ...

    def announce_queued(self) -> None:
        """Tell the process that runs the queue, wherever it is, that this one queued mail."""
        ...


# ---- blobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    id: str  # lowercase hex SHA-256 of the content
    size: int


class BlobWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def in_memory(self) -> bytes | None:
        """The whole content if it is still held in memory (small blobs), else None; before commit."""
        ...

    def inline(self) -> bytes | None:
        """The content when a store write that carries this writer is to keep it as a row of its own
        transaction (small blobs); None when the blob is committed as a file first."""
        ...

    def spilled(self) -> str | None:
        """Before commit, the temporary file holding everything written so far when the content spilled to
        disk (so checks can map it without making it durable first); None while it is in memory."""
        ...

    @property
    def ref(self) -> BlobRef:
        """Id and size of the content written so far."""
        ...

    async def commit(self) -> BlobRef:
        """Make the blob durable on its own, as a file (fsync file, rename, fsync directory), and return its
        id. Blobs given to a store write need no commit: the write makes them durable."""
        ...

    def commit_sync(self) -> BlobRef:
        """`commit` from a worker thread; `Mailboxes.append` runs it for blobs it is given."""
        ...

    def abort(self) -> None: ...


class Blobs(Protocol):
    """Message bodies, content-addressed, immutable once committed."""

    def create(self) -> BlobWriter: ...
    async def put(self, data: bytes) -> BlobRef: ...
    async def read(self, blob_id: str, start: int = 0, end: int | None = None) -> bytes: ...
    def open(self, blob_id: str) -> BinaryIO:
        """The blob for reading from the start, wherever it lives (blocking: call it from a worker thread
        for large blobs)."""
        ...

    def size(self, blob_id: str) -> int:
        """The blob's length in octets, without reading it (blocking, like `open`)."""
        ...

    def path(self, blob_id: str) -> str:
        """The local file of a blob kept as a file (every blob larger than the inline limit, or one
        committed on its own), for memory-mapped reads; small blobs may have none: use `open`."""
        ...

    async def delete(self, blob_id: str) -> None: ...
    async def exists(self, blob_id: str) -> bool: ...
    def ids(self) -> Iterator[str]:
        """Every committed blob's id (for `pochta verify`), in no particular order."""
        ...


# ---- outbound queue -------------------------------------------------------------------------------


class RecipientState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"  # the remote said 250: never sent again
    FAILED = "failed"  # a permanent failure: bounced


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueItem:
    """A message to send to the recipients of one destination domain."""

    blob_id: str
    size: int
    envelope: bytes  # mail.envelope dumps, with just this domain's recipients
    domain: str
    account_id: int | None  # the submitting account; None for bounces and forwards


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRecipient:
    address: str
    notify: tuple[str, ...]
    orcpt: str | None
    state: RecipientState
    reply: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    id: int
    blob_id: str
    size: int
    envelope: bytes
    domain: str
    account_id: int | None
    created: datetime
    next_attempt: datetime
    attempts: int
    is_held: bool
    lease_owner: str | None
    lease_until: datetime
    is_delay_notified: bool
    last_error: str | None
    recipients: tuple[QueueRecipient, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """What one delivery attempt found out, recorded by `QueueStore.finish_attempt`."""

    results: Mapping[str, tuple[RecipientState, str]]  # recipient → new state and the remote's answer
    next_attempt: datetime | None  # None: no pending recipient is left (or we gave up)
    error: str | None = None
    is_delay_notified: bool = False


class QueueStore(Protocol):
    """The outbound queue: durable before 250, claimed by workers with a lease."""

    async def enqueue(
        self,
        items: Sequence[QueueItem],
        *,
        now: datetime,
        local: Sequence[NewMessage] = (),
        blobs: Sequence[BlobWriter] = (),
    ) -> list[int]:
        """Queue `items` and append `local` copies in one transaction (all or none), `blobs` made durable
        first: a submission with local and remote recipients is accepted whole or not at all."""
        ...

    async def queue_entries(self) -> list[QueueEntry]: ...
    async def queue_entry(self, queue_id: int) -> QueueEntry | None: ...
    async def claim(self, *, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[QueueEntry]:
        """Due, unheld entries whose lease is free or expired, leased to `owner` (a crashed worker's
        entries come back when its lease runs out)."""
        ...

    async def finish_attempt(self, queue_id: int, *, owner: str, now: datetime, attempt: Attempt) -> None:
        """Record results and release the lease; the entry goes away when no recipient is pending."""
        ...

    async def set_held(self, queue_id: int, *, is_held: bool) -> None: ...
    async def retry_now(self, queue_id: int, *, now: datetime) -> None: ...
    async def delete_queue_entry(self, queue_id: int) -> None: ...


# ---- spam filter --------------------------------------------------------------------------------

GLOBAL_MODEL = 0  # the account id of the model and the allow/block list that every account shares


@dataclass(frozen=True, slots=True, kw_only=True)
class SpamModel:
    """One classifier model: per token, how many spam and ham messages held it, and the linear model's
    weights (filters/spam/linear.py)."""

    tokens: Mapping[str, tuple[int, int]]  # token → (spam, ham)
    spam: int  # messages trained as spam
    ham: int
    generation: int  # raised by every training, so a cached copy knows it is stale
    words: Mapping[str, float] = field(default_factory=dict)  # word feature → weight
    grams: Mapping[int, float] = field(default_factory=dict)  # octet 4-gram → weight


@dataclass(frozen=True, slots=True, kw_only=True)
class SpamTraining:
    """Count and weight changes for one model, written in one transaction."""

    account_id: int  # GLOBAL_MODEL or a user's account
    deltas: Mapping[str, tuple[int, int]]  # token → (spam change, ham change); counts never go below 0
    words: Mapping[str, float] = field(default_factory=dict)  # word feature → weight change (added)
    grams: Mapping[int, float] = field(default_factory=dict)  # octet 4-gram → weight change (added)
    spam: int = 0  # change of the number of spam messages
    ham: int = 0
    trained: Mapping[str, bool | None] = field(default_factory=dict)  # message digest → class now (None: forgotten)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpamListEntry:
    account_id: int  # GLOBAL_MODEL for the server-wide list
    pattern: str  # an address (local@domain) or "@domain", lowercase
    is_block: bool  # block (always spam) or allow (never spam)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpamForgotten:
    spam: int  # spam messages the model had counted
    ham: int
    generation: int  # the model's new one


class SpamStore(Protocol):
    """The learning spam filter's models, what each model was taught, and the allow and block lists."""

    async def spam_model(self, account_id: int) -> SpamModel: ...
    async def spam_generation(self, account_id: int) -> int:
        """The model's generation (0 when it was never trained): a cheap staleness check."""
        ...

    async def spam_totals(self, account_id: int) -> tuple[int, int]:
        """How many spam and ham messages the model counted, without reading the model."""
        ...

    async def spam_trained(self, account_id: int, messages: Sequence[str]) -> dict[str, bool]:
        """Which of the message digests this model was taught, and as what (True: spam)."""
        ...

    async def train_spam(self, training: SpamTraining) -> int:
        """Apply count and weight changes and record the trained messages; returns the model's new generation."""
        ...

    async def forget_spam_model(self, account_id: int) -> SpamForgotten:
        """Forget all a model was taught: its counts, weights and taught messages (its lists stay), so it can
        be trained afresh; returns what it had counted and its new generation, from the same transaction."""
        ...

    async def add_spam_list_entry(self, entry: SpamListEntry) -> None: ...
    async def remove_spam_list_entry(self, account_id: int, pattern: str) -> None: ...
    async def spam_list(self, account_ids: Sequence[int]) -> list[SpamListEntry]:
        """The entries of these accounts' lists (include GLOBAL_MODEL for the server-wide one)."""


# ---- import and backup ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportProgress:
    """How far an import of one source into one mailbox got (see archive/)."""

    account_id: int
    source: str  # "mbox:/abs/path", "maildir:/abs/dir", "imap://user@host/folder"
    mailbox: str  # the target mailbox's name
    position: str  # the source's cursor after the last message stored
    messages: int = 0  # messages stored from this source so far


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobUse:
    """One stored reference to a blob, for backups and `pochta verify`."""

    blob_id: str
    size: int | None  # the size the referring row records, if it records one
    where: str  # the row, for a report: "a@example.test INBOX uid 7", "queue 12"


class Imports(Protocol):
    """Import progress, committed together with the messages it covers."""

    async def import_progress(self, account_id: int, source: str, mailbox: str) -> ImportProgress | None: ...

    async def append_imported(
        self, messages: Sequence[NewMessage], *, blobs: Sequence[BlobWriter] = (), progress: ImportProgress
    ) -> list[Appended]:
        """`Mailboxes.append` and recording `progress`, in one transaction."""
        ...

    async def forget_import(self, account_id: int, source: str | None = None) -> int:
        """Drop the progress of `source` (every source when None); returns the rows dropped."""
        ...


class Backups(Protocol):
    """A consistent copy of the metadata while the server runs, and self-checks."""

    async def backup(self, data_dir: str) -> list[BlobUse]:
        """Write a consistent copy of the database into the data directory `data_dir` (online, while
        others write) and return every blob reference in that copy."""
        ...

    async def blob_uses(self) -> list[BlobUse]:
        """Every blob reference in the store (messages, queue, and any other table that keeps blobs)."""
        ...

    async def check_database(self) -> list[str]:
        """Problems in the metadata itself (page-level integrity, foreign keys, mailbox and quota
        counters that disagree with the rows); empty when all is well."""
        ...


# ---- Sieve ----------------------------------------------------------------------------------------


class LimitReached(StoreError):
    """A per-account count limit (e.g. the number of Sieve scripts) would be passed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SieveScript:
    id: int
    account_id: int
    name: str
    source: str
    is_active: bool
    version: int  # changes with every put of the same name: a cache of parsed scripts keys on (id, version)
    updated: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveScript:
    """Which script runs for an account, without its source (delivery asks this for every message)."""

    account_id: int
    script_id: int
    version: int


class MarkKind(enum.StrEnum):
    VACATION = "vacation"  # a vacation reply sent: key is handle NUL sender (RFC 5230 §4.2)
    DUPLICATE = "duplicate"  # a message id the duplicate test saw (RFC 7352)


class SieveStore(Protocol):
    """Each account's Sieve scripts (at most one active, RFC 5804 §1.3) and the marks they leave."""

    async def put_sieve_script(self, account_id: int, name: str, source: str, *, max_scripts: int = 0) -> SieveScript:
        """Create or replace `name` (keeping its active flag); LimitReached when a new script would make
        more than `max_scripts` (0: no limit)."""
        ...

    async def get_sieve_script(self, account_id: int, name: str) -> SieveScript | None: ...
    async def get_sieve_script_by_id(self, script_id: int) -> SieveScript | None: ...
    async def list_sieve_scripts(self, account_id: int) -> list[SieveScript]: ...
    async def active_sieve_scripts(self, account_ids: Sequence[int]) -> list[ActiveScript]:
        """The active scripts of those accounts that have one, in one read."""
        ...

    async def activate_sieve_script(self, account_id: int, name: str | None) -> None:
        """Make `name` the active script (NotFound), or with None deactivate all."""
        ...

    async def delete_sieve_script(self, account_id: int, name: str) -> None:
        """NotFound; Conflict when it is the active script (RFC 5804 §2.10)."""
        ...

    async def rename_sieve_script(self, account_id: int, old: str, new: str) -> None:
        """NotFound; AlreadyExists when `new` is taken (RFC 5804 §2.11.1)."""
        ...

    async def has_sieve_mark(self, account_id: int, kind: MarkKind, key: str, *, now: datetime) -> bool:
        """Whether an unexpired mark exists."""
        ...

    async def set_sieve_mark(
        self, account_id: int, kind: MarkKind, key: str, *, expires: datetime, now: datetime, is_renewed: bool = False
    ) -> bool:
        """Set the mark unless an unexpired one exists (then False): the check and the set are one
        transaction, so two deliveries at once send one vacation reply. With `is_renewed` the new expiry is
        set in any case (and True returned)."""
        ...


# ---- retention, undelete, journal index, quota warnings (archive/) -------------------------------------


class RetentionAction(enum.StrEnum):
    ARCHIVE = "archive"  # move into the account's Archive mailbox (optionally Archive/<year>)
    EXPUNGE = "expunge"  # expunge (into the undelete bin)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """What happens to the messages of one mailbox name after `days` days, for a domain or one account."""

    target: str  # a domain name, or an account address
    mailbox: str
    action: RetentionAction
    days: int  # 0: off (overrides a wider policy or the config default)
    is_per_year: bool = False  # ARCHIVE into Archive/<year of the message>

    @property
    def scope(self) -> str:
        return "account" if "@" in self.target else "domain"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletedMessage:
    """An expunged message kept for undelete: invisible to IMAP and POP3, not counted in quota."""

    id: int
    account_id: int
    mailbox: str  # its mailbox's name when it was expunged
    flags: frozenset[str]
    internal_date: datetime
    expunged: datetime
    size: int
    blob_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJournalRecord:
    domain: str
    segment: str
    offset: int
    length: int
    received: datetime
    is_outgoing: bool
    sender: str
    recipients: tuple[str, ...]
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalRecord(NewJournalRecord):
    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalQuery:
    sender: str | None = None  # exact address
    recipient: str | None = None  # exact address
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    domain: str | None = None


class ArchiveStore(Protocol):
    """What the archive package keeps in the store: policies, the undelete bin, the journal's index."""

    async def set_retention_policy(self, policy: RetentionPolicy) -> None: ...
    async def remove_retention_policy(self, target: str, mailbox: str) -> None: ...
    async def retention_policies(self) -> list[RetentionPolicy]: ...
    async def retention_due(
        self, mailbox_id: int, *, before: datetime, by_save_date: bool, limit: int
    ) -> list[Message]:
        """Messages of the mailbox older than `before` (by INTERNALDATE, or by save date), oldest UIDs first."""
        ...

    async def deleted_messages(
        self, account_id: int, *, since: datetime | None = None, mailbox: str | None = None
    ) -> list[DeletedMessage]: ...
    async def restore_deleted(self, account_id: int, ids: Sequence[int]) -> list[tuple[str, int]]:
        """Append the kept messages back (new UIDs) into their mailboxes, made when missing, all or none
        (OverQuota); returns (mailbox, uid) per message restored."""
        ...

    async def purge_deleted(self, *, before: datetime, limit: int) -> int:
        """Forget up to `limit` kept messages expunged before `before`; returns how many went."""
        ...

    async def set_journal_domain(self, domain: str, *, retention_days: int) -> None: ...
    async def remove_journal_domain(self, domain: str) -> None: ...
    async def journal_domains(self) -> dict[str, int]:
        """Journaled domains and their retention in days (0: for ever)."""
        ...

    async def add_journal_records(self, records: Sequence[NewJournalRecord]) -> list[int]: ...
    async def search_journal(self, query: JournalQuery) -> list[JournalRecord]: ...
    async def drop_journal_segment(self, domain: str, segment: str) -> int:
        """Remove the index rows of one segment file (before the file is deleted)."""
        ...

    async def quota_warnings_due(self, *, ratio: float) -> list[Account]:
        """Accounts at or above `ratio` of their quota that were not warned yet."""
        ...

    async def add_quota_warning(self, message: NewMessage, *, ratio: float, now: datetime) -> Appended | None:
        """Record the warning and append its message (not refused by the quota it warns about), if the
        account is still due; None when it is not (another node warned, or usage dropped)."""
        ...

    async def clear_quota_warnings(self, *, ratio: float) -> int:
        """Forget the warnings of accounts now below `ratio`, so they are warned again next time."""
        ...


class Store(Directory, Mailboxes, Changes, QueueStore, SpamStore, SieveStore, ArchiveStore, Imports, Backups, Protocol):
    """One backend implements all of them; sessions take the narrower Protocol they need."""

    async def close(self) -> None: ...
