"""Users' Sieve scripts at delivery: each local copy whose account has an active script is placed as the
script says; redirects and vacation replies become generated messages for the queue.

This runs after the spam and virus checks, so ``spamtest``/``virustest`` see their verdicts (the
pipeline's facts). Only accounts with an active script pay anything: one read finds which of the
message's accounts have one, and parsed scripts are cached by (script id, version).

* keep / implicit keep: INBOX, or Junk when the spam checks put the copy there; fileinto: the folder,
  created first with ``:create`` (RFC 5490 §3.2), else INBOX when it is missing; flags (RFC 5232).
* discard: no copy for that account; the SMTP transaction still succeeds.
* reject / ereject (RFC 5429 §2.1-2.2): refused at SMTP time (550 5.7.1 with the reason) when the
  message has only that one recipient; otherwise that account's copy is dropped and the sender gets a
  failure DSN (RFC 3464) through the queue, as RFC 5429 §2.1.1 allows.
* redirect: the message, with ``Delivered-To: <recipient>`` on top, goes to the target with the
  original envelope sender (no SRS yet). A message that already carries that Delivered-To, or more than
  ``MAX_HOPS`` Received fields, is kept instead of redirected: a forwarding loop (as Postfix does).
* vacation (RFC 5230, RFC 3834): a text/plain reply from the null reverse-path with
  ``Auto-Submitted: auto-replied``, In-Reply-To and References; the runtime decides whether to answer
  at all (lists, bulk, auto-submitted, robots, own addresses, not named in To/Cc). One reply per sender
  and handle within ``:days``: the mark is set in the store (check and set in one transaction, so two
  messages at once give one reply) before the reply is queued. A crash between the two loses that one
  reply rather than sending two.
* a run-time error keeps the message (implicit keep) and is logged.

* editheader (RFC 5293): an account whose script edited the header gets its copies (and redirects)
  with the edited header block, in a blob of their own; the others share the received one.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.quoprimime import body_encode
from email.utils import format_datetime, formataddr
from typing import Any, Protocol, TypeVar, cast

from pochta.accounts import resolve
from pochta.delivery import LocalCopy, Outgoing, parse_spool
from pochta.filters.sieve import (
    Discard,
    Environment,
    FileInto,
    Keep,
    MessageView,
    Redirect,
    Reject,
    Result,
    Script,
    SieveError,
    Vacation,
    parse,
    run,
)
from pochta.mail.address import AddressError, parse_address
from pochta.mail.envelope import Envelope, Recipient
from pochta.proto.smtp.replies import Reply
from pochta.queue.dsn import Action as DsnAction
from pochta.queue.dsn import RecipientStatus, build_report
from pochta.store.api import (
    INBOX,
    Blobs,
    BlobWriter,
    Directory,
    Mailboxes,
    MarkKind,
    SieveStore,
    SpecialUse,
    StoreError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_HOPS = 50  # Received fields after which a message is not redirected again (RFC 5321 §6.3 suggests 100)
_CACHE_SIZE = 1024  # parsed scripts kept
_RUN_TIMEOUT = 30.0  # seconds a store call from the script's thread may take
_CHUNK = 1 << 20  # octets copied at a time into a new blob


class SieveAccess(Directory, Mailboxes, SieveStore, Protocol):
    """What running scripts needs from the store."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """One received message, as the scripts see it."""

    id: str
    content: bytes | mmap.mmap
    envelope: Envelope
    facts: Mapping[str, str]
    remote_ip: str = ""
    remote_host: str = ""


@dataclass(slots=True, kw_only=True)
class Plan:
    """Where the message goes after the scripts ran."""

    copies: list[LocalCopy]
    outgoing: list[Outgoing] = field(default_factory=list)  # redirects, vacation replies, reject notices
    reject: Reply | None = None  # refuse the whole message at SMTP time
    duplicates: list[tuple[int, str, int, bool]] = field(default_factory=list)  # (account, id, seconds, is_last)


class Sieving:
    def __init__(
        self,
        *,
        store: SieveAccess,
        blobs: Blobs,
        hostname: str,
        now: Callable[[], datetime],
        max_redirects: int = 4,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._hostname = hostname
        self._now = now
        self._max_redirects = max_redirects
        self._new_id = new_id
        self._scripts: OrderedDict[tuple[int, int], Script] = OrderedDict()

    async def plan(self, copies: Sequence[LocalCopy], message: Context) -> Plan:
        active = {a.account_id: a for a in await self._store.active_sieve_scripts([c.account.id for c in copies])}
        if not active:
            return Plan(copies=list(copies))
        plan = Plan(copies=[])
        single_recipient = len(message.envelope.recipients) == 1 and len(copies) == 1
        for copy in copies:
            found = active.get(copy.account.id)
            script = await self._script(found.script_id, found.version) if found is not None else None
            if script is None:
                plan.copies.append(copy)
                continue
            result = await self._run(script, copy, message)
            await self._apply(result, copy, message, plan, may_refuse=single_recipient)
        return plan

    async def record(self, plan: Plan) -> None:
        """After the message is stored: remember the duplicate ids the scripts asked about (RFC 7352)."""
        now = self._now()
        for account_id, key, seconds, is_last in plan.duplicates:
            try:
                await self._store.set_sieve_mark(
                    account_id,
                    MarkKind.DUPLICATE,
                    key,
                    expires=now + timedelta(seconds=seconds),
                    now=now,
                    is_renewed=is_last,  # RFC 7352 §3.3: with :last the period counts from this copy
                )
            except StoreError:
                log.warning("sieve duplicate id not recorded account=%d", account_id)

    # ---- scripts ----------------------------------------------------------------------------------

    async def _script(self, script_id: int, version: int) -> Script | None:
        key = (script_id, version)
        cached = self._scripts.get(key)
        if cached is not None:
            self._scripts.move_to_end(key)
            return cached
        stored = await self._store.get_sieve_script_by_id(script_id)
        if stored is None:
            return None
        try:
            script = parse(stored.source)
        except SieveError as exc:  # stored before an extension went away: deliver as if there were none
            log.warning("sieve script does not parse account=%d script=%r: %s", stored.account_id, stored.name, exc)
            return None
        self._scripts[(script_id, stored.version)] = script
        while len(self._scripts) > _CACHE_SIZE:
            self._scripts.popitem(last=False)
        return script

    async def _run(self, script: Script, copy: LocalCopy, message: Context) -> Result:
        """The script in a worker thread; its questions (mailboxes, marks, included scripts) are store
        reads made on the event loop while the thread waits."""
        loop = asyncio.get_running_loop()
        account = copy.account
        store = self._store
        now = self._now()

        def ask(coroutine: Coroutine[Any, Any, T]) -> T:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(_RUN_TIMEOUT)

        async def mailbox_exists(name: str) -> bool:
            return await store.get_mailbox(account.id, name) is not None

        async def include(name: str) -> str | None:
            found = await store.get_sieve_script(account.id, name)
            return found.source if found is not None else None

        environment = Environment(
            now=now,
            user=account.address,
            my_addresses=frozenset(r.address for r in copy.recipients),
            domain=account.address.rpartition("@")[2],
            host=self._hostname,
            facts=message.facts,
            mailbox_exists=lambda name: ask(mailbox_exists(name)),
            is_duplicate=lambda key, _seconds: ask(store.has_sieve_mark(account.id, MarkKind.DUPLICATE, key, now=now)),
            include=lambda name, is_global: None if is_global else ask(include(name)),
            vacation_seen=lambda sender, handle, _seconds: ask(
                store.has_sieve_mark(account.id, MarkKind.VACATION, _vacation_key(sender, handle), now=now)
            ),
            remote_host=message.remote_host,
            remote_ip=message.remote_ip,
            max_redirects=self._max_redirects,
        )
        view = MessageView(
            content=cast(bytes, message.content),  # a mapped large message reads as bytes do
            envelope_from=message.envelope.mail_from,
            envelope_to=copy.recipients[0].address,
            size=len(message.content),
        )
        try:
            result = await asyncio.to_thread(run, script, view, environment)
        except StoreError:
            raise  # a store question failed: the message is refused with 451 and comes again
        except Exception:  # our bug, not the user's: deliver as if there were no script
            log.exception("sieve run failed id=%s user=%s; kept", message.id, account.address)
            return Result(actions=(Keep(),), implicit_keep=True)
        for error in result.errors:
            log.warning("sieve error id=%s user=%s: %s", message.id, account.address, error)
        return result

    # ---- actions ----------------------------------------------------------------------------------

    async def _apply(self, result: Result, copy: LocalCopy, message: Context, plan: Plan, *, may_refuse: bool) -> None:
        account = copy.account
        actions = result.actions
        redirects = [a for a in actions if isinstance(a, Redirect)]
        if redirects and _is_loop(message.content, copy):
            log.warning("sieve redirect loop id=%s user=%s: kept instead", message.id, account.address)
            actions = (*[a for a in actions if not isinstance(a, Redirect)], Keep())
            redirects = []
        placements: list[LocalCopy] = []
        for action in actions:
            match action:
                case Keep(flags=flags, mailbox=mailbox):
                    is_junk = copy.special_use is SpecialUse.JUNK and mailbox == INBOX
                    placements.append(
                        LocalCopy(
                            account=account,
                            recipients=copy.recipients,
                            mailbox=mailbox,
                            special_use=SpecialUse.JUNK if is_junk else None,
                            flags=frozenset(flags),
                        )
                    )
                case FileInto(mailbox=mailbox, flags=flags, create=create):
                    if create:
                        await self._create(account.id, mailbox)
                    placements.append(
                        LocalCopy(account=account, recipients=copy.recipients, mailbox=mailbox, flags=frozenset(flags))
                    )
                case Reject(reason=reason):
                    reply = Reply(code=550, status="5.7.1", text=_one_line(reason) or "message refused")
                    if may_refuse:
                        plan.reject = reply
                        return
                    notice = await self._reject_notice(copy, message, reply)
                    if notice is not None:
                        plan.outgoing.append(notice)
                case Vacation():
                    answer = await self._vacation(action, copy, message)
                    if answer is not None:
                        plan.outgoing.append(answer)
                case Discard() | Redirect():
                    pass
        if result.edited_header is None:
            plan.copies += placements
            if redirects:
                plan.outgoing.append(await self._redirect(redirects, copy, message.envelope, (message.content,)))
        elif placements or redirects:
            # editheader (RFC 5293): this account's copies and redirects carry the edited header block
            body = message.content[_body_start(message.content) :]
            parts = (result.edited_header, body)
            if placements:
                writer = self._blobs.create()
                for part in parts:
                    _copy_into(writer, part)
                structure = await parse_spool(writer, self._blobs)
                plan.outgoing.append(
                    Outgoing(blob=writer, structure=structure, envelope=message.envelope, local=tuple(placements))
                )
            if redirects:
                header = _RETURN_PATH.sub(b"", result.edited_header, count=1)
                plan.outgoing.append(await self._redirect(redirects, copy, message.envelope, (header, body)))
        plan.duplicates += [(account.id, d.id, d.seconds, d.is_last) for d in result.duplicate_ids]
        log.info(
            "sieve id=%s user=%s actions=%s%s",
            message.id,
            account.address,
            ",".join(type(a).__name__.lower() for a in actions) or "-",
            "" if placements else " (no local copy)",
        )

    async def _create(self, account_id: int, name: str) -> None:
        if await self._store.get_mailbox(account_id, name) is not None:
            return
        try:
            await self._store.create_mailbox(account_id, name)
        except StoreError as exc:  # a bad name, or made meanwhile: the copy falls back to INBOX if missing
            log.info("sieve fileinto :create %r account=%d: %s", name, account_id, exc)

    async def _redirect(
        self, redirects: list[Redirect], copy: LocalCopy, original: Envelope, parts: Sequence[bytes | mmap.mmap]
    ) -> Outgoing:
        """The message (`parts` in order) with Delivered-To on top and our Return-Path removed, for every
        redirect target, from the original envelope sender."""
        writer = self._blobs.create()
        writer.write(f"Delivered-To: {copy.recipients[0].address}\r\n".encode())
        first, *rest = parts
        _copy_into(writer, first, start=_after_return_path(first))
        for part in rest:
            _copy_into(writer, part)
        envelope = Envelope(
            mail_from=original.mail_from,
            recipients=tuple(Recipient(address=r.address) for r in redirects),
            body=original.body,
            is_smtputf8=original.is_smtputf8,
        )
        return await self._outgoing(writer, envelope)

    async def _vacation(self, action: Vacation, copy: LocalCopy, message: Context) -> Outgoing | None:
        now = self._now()
        account = copy.account
        key = _vacation_key(action.to, action.handle)
        expires = now + timedelta(seconds=max(action.seconds, 1))
        if action.seconds and not await self._store.set_sieve_mark(
            account.id, MarkKind.VACATION, key, expires=expires, now=now
        ):
            return None  # another delivery answered this sender meanwhile
        content = vacation_message(action, message_id=f"<{self._new_id()}.vacation@{self._hostname}>", now=now)
        writer = self._blobs.create()
        writer.write(content)
        log.info("sieve vacation id=%s user=%s to=%s", message.id, account.address, action.to)
        envelope = Envelope(
            mail_from="",  # RFC 3834 §3.3 and RFC 5230 §4.9: no bounce ever comes back for it
            recipients=(Recipient(address=action.to, notify=("NEVER",)),),
            body=None if content.isascii() else "8BITMIME",
            is_smtputf8=not action.to.isascii(),
        )
        return await self._outgoing(writer, envelope)

    async def _reject_notice(self, copy: LocalCopy, message: Context, reply: Reply) -> Outgoing | None:
        envelope = message.envelope
        if not envelope.mail_from:
            return None
        now = self._now()
        report = build_report(
            envelope=envelope,
            statuses=[
                RecipientStatus(recipient=r, action=DsnAction.FAILED, status="5.7.1", reply=reply)
                for r in copy.recipients
            ],
            hostname=self._hostname,
            arrival_date=now,
            now=now,
            message_id=f"<{self._new_id()}.reject@{self._hostname}>",
            original=_header_block(message.content),
            is_header_only=True,
        )
        writer = self._blobs.create()
        writer.write(report.content)
        notice = Envelope(
            mail_from="",
            recipients=(Recipient(address=report.recipient, notify=("NEVER",)),),
            body="8BITMIME" if report.is_8bit else None,
            is_smtputf8=report.is_smtputf8,
        )
        return await self._outgoing(writer, notice)

    async def _outgoing(self, writer: BlobWriter, envelope: Envelope) -> Outgoing:
        """A generated message: local recipients get it at once (their scripts do not run on it),
        the others through the queue."""
        local: list[LocalCopy] = []
        remote: list[Recipient] = []
        for recipient in envelope.recipients:
            try:
                address = parse_address(recipient.address)
            except AddressError:
                log.warning("sieve: generated message to a bad address %r dropped", recipient.address)
                continue
            resolution = await resolve(self._store, address)
            if resolution is None or not resolution.is_local:
                remote.append(recipient)
                continue
            local += [LocalCopy(account=a, recipients=(recipient,)) for a in resolution.accounts]
            remote += [Recipient(address=str(f), notify=recipient.notify) for f in resolution.forwards]
        structure = await parse_spool(writer, self._blobs) if local else b""
        return Outgoing(blob=writer, structure=structure, envelope=envelope, local=tuple(local), remote=tuple(remote))


# ---- the vacation reply ---------------------------------------------------------------------------


def vacation_message(action: Vacation, *, message_id: str, now: datetime) -> bytes:
    """The reply (RFC 3834 §3): to the sender, from the user, Auto-Submitted, threaded to the original."""
    header = [
        f"From: {_address_field(action.from_)}",
        f"To: {_address_field(action.to)}",
        f"Subject: {_encoded(action.subject)}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5, RFC 5230 §5
    ]
    if action.in_reply_to:
        header.append(f"In-Reply-To: {action.in_reply_to}")
    if action.references:
        header.append(f"References: {action.references}")
    header.append("MIME-Version: 1.0")
    if action.mime:  # RFC 5230 §4.4: the reason is a MIME entity, its own header included
        body = action.body.replace("\r\n", "\n").replace("\n", "\r\n")
        return ("\r\n".join(header) + "\r\n" + body + ("" if body.endswith("\r\n") else "\r\n")).encode()
    text = action.body.replace("\r\n", "\n").rstrip("\n") + "\n"
    if text.isascii() and all(len(line) <= 998 for line in text.split("\n")):  # RFC 5322 §2.1.1
        encoding, body = "7bit", text.replace("\n", "\r\n")
    else:  # quoted-printable needs no 8BITMIME on the way (RFC 2045 §6.7)
        as_octets = text.encode("utf-8").decode("latin-1")
        encoding, body = "quoted-printable", body_encode(as_octets, maxlinelen=76, eol="\r\n")
        body = body if body.endswith("\r\n") else body + "\r\n"
    header += ["Content-Type: text/plain; charset=utf-8", f"Content-Transfer-Encoding: {encoding}"]
    return ("\r\n".join(header) + "\r\n\r\n" + body).encode()


def _address_field(address: str) -> str:
    if "<" in address:
        return _one_line(address)
    return formataddr(("", _one_line(address))) or f"<{address}>"


def _encoded(text: str) -> str:
    text = _one_line(text)
    return text if text.isascii() else Header(text, "utf-8").encode(linesep="\r\n")  # RFC 2047


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n\t]+", " ", text).strip()


# ---- loops and keys -------------------------------------------------------------------------------

_DELIVERED_TO = re.compile(rb"^delivered-to:[ \t]*<?([^\r\n>]*)>?[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_RECEIVED = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)
_RETURN_PATH = re.compile(rb"^return-path:[^\n]*\n", re.IGNORECASE | re.MULTILINE)


def _header_block(content: bytes | mmap.mmap) -> bytes:
    end = content.find(b"\r\n\r\n")
    if end == -1:
        end = content.find(b"\n\n")
    return bytes(content[: end if end != -1 else min(len(content), 1 << 20)])


def _is_loop(content: bytes | mmap.mmap, copy: LocalCopy) -> bool:
    """The message passed through this recipient's redirect before, or through too many hops."""
    header = _header_block(content)
    if len(_RECEIVED.findall(header)) > MAX_HOPS:
        return True
    mine = {r.address.lower() for r in copy.recipients} | {copy.account.address.lower()}
    return any(found.decode("utf-8", "replace").strip().lower() in mine for found in _DELIVERED_TO.findall(header))


def _after_return_path(content: bytes | mmap.mmap) -> int:
    """Where the message starts without the Return-Path the MX put on top (it is not sent on)."""
    if content[:12].lower() != b"return-path:":
        return 0
    end = content.find(b"\n")
    return end + 1 if end != -1 else 0


def _body_start(content: bytes | mmap.mmap) -> int:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = content.find(separator)
        if end != -1:
            return end + len(separator)
    return len(content)


def _copy_into(writer: BlobWriter, data: bytes | mmap.mmap, *, start: int = 0) -> None:
    for offset in range(start, len(data), _CHUNK):
        writer.write(data[offset : min(len(data), offset + _CHUNK)])


def _vacation_key(sender: str, handle: str) -> str:
    return f"{handle}\0{sender.lower()}"
