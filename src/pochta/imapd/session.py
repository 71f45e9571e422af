"""One IMAP connection: drives the sans-IO core (proto.imap) over a net.Stream.

The loop pulls events from the core and answers each; commands go to the modules of their group
(mailboxes.py, messages.py), which raise :class:`~.refusal.Refusal` for a NO or BAD. Before each
tagged completion the session sends what other sessions changed in the selected mailbox (selected.py),
and during IDLE it pushes those changes as soon as the store's change feed wakes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from pochta.accounts import check_password
from pochta.net import IdleTimeout, ReadInterrupted, ShutdownRequested, Stream
from pochta.proto import sasl
from pochta.proto.imap import (
    AppendEnd,
    AppendStart,
    AuthCancelled,
    AuthResponse,
    Code,
    Command,
    Condition,
    ConnectionClosed,
    Continuation,
    Done,
    InvalidCommand,
    LiteralChunk,
    LiteralEnd,
    LiteralStart,
    LocalProtocolError,
    NeedData,
    Paused,
    Response,
    ServerConnection,
    Status,
    Tagged,
    render,
)
from pochta.proto.imap import commands as c
from pochta.proto.imap.responses import (
    CapabilityData,
    EnabledData,
    IdData,
)
from pochta.store.api import Account, StoreError

from . import auth, mailboxes, messages, quota, search
from .context import Context
from .messages import Upload, open_upload
from .refusal import Refusal, refusal_for
from .selected import Selected

log = logging.getLogger(__name__)
trace = logging.getLogger("pochta.trace.imap")

ENABLEABLE = frozenset({"CONDSTORE", "QRESYNC", "IMAP4REV2"})  # RFC 5161
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
VERSION = "0.1.0"
IDLE_LIMIT = 31 * 60.0  # RFC 2177 §3: clients re-issue IDLE at least every 29 minutes
_SECRET = re.compile(rb"(?i)^(\S+ (?:LOGIN|AUTHENTICATE \S+)) .*")  # never trace passwords


@dataclass(frozen=True, slots=True, kw_only=True)
class _Ok:
    """A tagged OK to send once the pending updates are out."""

    text: str
    code: Code | None = None


class Session:
    def __init__(self, stream: Stream, *, context: Context) -> None:
        self.stream = stream
        self.context = context
        self.settings = context.settings
        self.conn = ServerConnection(limits=self.settings.limits, is_tls=stream.is_tls)
        self.account: Account | None = None
        self.selected: Selected | None = None
        self.saved: list[int] = []  # the SEARCHRES result, UIDs (RFC 5182)
        self._dirty = asyncio.Event()  # the store changed something of this account
        self._watcher: asyncio.Task[None] | None = None
        self._idle_tag: str | None = None
        self._exchange: auth.Exchange | None = None  # AUTHENTICATE in progress
        self._upload: Upload | None = None
        self._append_refusal: Refusal | None = None

    # ---- output (the Output protocol of context.py) --------------------------------------------------------

    def send(self, response: Response) -> None:
        data = self.conn.send(response)
        if trace.isEnabledFor(logging.DEBUG):  # the first line only: never a message body
            trace.debug("S: %s", data.split(b"\r\n", 1)[0][:200].decode(errors="replace"))
        self.stream.write(data)

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    async def drain(self) -> None:
        await self.stream.drain()

    # ---- the loop ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        peer = self.stream.peer_host
        log.info("imap connect peer=%s port=%d tls=%s", peer, self.stream.local_port, self.stream.is_tls)
        self.send(
            Condition(status=Status.OK, code=self._capability_code(), text=f"{self.settings.hostname} Pochta ready")
        )
        try:
            await self._loop()
        except IdleTimeout:
            self._bye("idle too long, closing connection", "UNAVAILABLE")
        except ShutdownRequested:
            self._bye("server shutting down, try again later", "UNAVAILABLE")
        except ConnectionError:
            pass
        except Exception:
            log.exception("imap session failed peer=%s", peer)
            self._bye("internal error, closing connection", "SERVERBUG")
        finally:
            if self._watcher is not None:
                self._watcher.cancel()
            self._drop_upload()
            user = self.account.address if self.account else "-"
            log.info("imap disconnect peer=%s user=%s", peer, user)

    def _bye(self, text: str, code: str) -> None:
        bye = Condition(status=Status.BYE, code=Code(name=code), text=text)
        try:
            self.send(bye)
        except LocalProtocolError:  # the core is closed or between TLS layers: write it raw
            self.stream.write(render(bye))

    async def _loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            match event:
                case NeedData():
                    await self.stream.drain()
                    await self._feed()
                case ConnectionClosed():
                    await self.stream.drain()
                    return
                case Paused():  # pragma: no cover - every event below is answered before the next
                    raise AssertionError("IMAP core paused with no response owed")
                case Command(tag=tag, command=command):
                    await self._command(tag, command)
                case InvalidCommand(reply=reply, is_fatal=is_fatal):
                    self._drop_upload()  # whatever was in progress ends with this reply
                    self._exchange = self._idle_tag = None
                    self.send(reply)
                    if is_fatal:
                        self._bye("too many bad commands", "UNAVAILABLE")
                        await self.stream.drain()
                        return
                case LiteralStart():
                    self.send(Continuation())
                case AppendStart():
                    await self._append_start(event)
                case LiteralChunk(data=data):
                    if self._upload is not None:
                        self._upload.write(data)
                case LiteralEnd():
                    await self._append_message_end()
                case AppendEnd(tag=tag):
                    await self._append_end(tag)
                case AuthResponse(tag=tag, data=data):
                    assert self._exchange is not None
                    await self._auth_outcome(tag, await self._exchange.respond(data))
                case AuthCancelled(tag=tag):
                    self._exchange = None
                    self.send(Tagged(tag=tag, status=Status.BAD, text="AUTHENTICATE cancelled"))
                case Done(tag=tag):
                    self._idle_tag = None
                    await self._complete(tag, c.Idle(), _Ok(text="IDLE terminated"))

    async def _feed(self) -> None:
        if self._idle_tag is not None:
            data = await self._idle_read()
        else:
            is_between_commands = self._upload is None and self._exchange is None
            data = await self.stream.read(interruptible=is_between_commands)
        if trace.isEnabledFor(logging.DEBUG) and self._exchange is None and self._upload is None:
            line = _SECRET.sub(rb"\1 ***", data.split(b"\r\n", 1)[0][:200])
            trace.debug("C: %s", line.decode(errors="replace"))
        self.conn.receive_data(data)

    # ---- commands ---------------------------------------------------------------------------------------------

    async def _command(self, tag: str, command: c.CommandType) -> None:
        try:
            result = await self._dispatch(tag, command)
        except Refusal as refusal:
            await self._complete(tag, command, refusal)
            return
        except StoreError as exc:
            log.warning("imap store error user=%s: %s", self.account.address if self.account else "-", exc)
            await self._complete(tag, command, refusal_for(exc))
            return
        if result is not None:
            await self._complete(tag, command, result)

    async def _complete(self, tag: str, command: c.CommandType, result: _Ok | Refusal) -> None:
        """Send the updates owed for the selected mailbox, then the tagged response."""
        if self.selected is not None and not isinstance(command, c.Select | c.Logout):
            is_by_number = isinstance(command, c.Fetch | c.Store | c.Search) and not command.is_uid
            await self._push_updates(
                allow_expunge=not is_by_number, must_poll=isinstance(command, c.Noop | c.Check | c.Idle)
            )
        if isinstance(result, Refusal):
            self.send(Tagged(tag=tag, status=result.status, text=result.text, code=result.code))
        else:
            self.send(Tagged(tag=tag, status=Status.OK, text=result.text, code=result.code))

    async def _dispatch(self, tag: str, command: c.CommandType) -> _Ok | None:
        """Answer ``command``; returns the tagged OK to send, or None when it was answered already."""
        context = self.context
        store = context.store
        match command:
            case c.Capability():
                self.send(CapabilityData(capabilities=self._capabilities()))
                return _Ok(text="CAPABILITY completed")
            case c.Noop() | c.Check():
                return _Ok(text=f"{type(command).__name__.upper()} completed")
            case c.Logout():
                self.send(Condition(status=Status.BYE, text="logging out"))
                self.send(Tagged(tag=tag, status=Status.OK, text="LOGOUT completed"))
                return None
            case c.Id():  # RFC 2971
                self.send(IdData(params=(("name", "Pochta"), ("version", VERSION))))
                return _Ok(text="ID completed")
            case c.StartTls():
                await self._start_tls(tag)
                return None
            case c.Login(user=user, password=password):
                return await self._login(user, password)
            case c.Authenticate():
                await self._authenticate(tag, command)
                return None
            case c.Enable(capabilities=capabilities):
                return self._enable(capabilities)
        account_id = self._account_id()
        match command:
            case c.Select():
                return await self._select(command)
            case c.Create():
                created = await mailboxes.create(store, account_id, command)
                code = Code(name="MAILBOXID", value=b"(%s)" % mailboxes.mailbox_id(created).encode())
                return _Ok(text="CREATE completed", code=code)  # RFC 8474 §4.1
            case c.Delete(mailbox=name):
                await mailboxes.delete(store, account_id, name)
                return _Ok(text="DELETE completed")
            case c.Rename():
                await mailboxes.rename(store, account_id, command)
                return _Ok(text="RENAME completed")
            case c.Subscribe(mailbox=name) | c.Unsubscribe(mailbox=name):
                await mailboxes.subscribe(store, account_id, name, is_subscribed=isinstance(command, c.Subscribe))
                return _Ok(text="done")
            case c.List():
                status_items = command.status_items if c.ListReturn.STATUS in command.returns else ()
                found = await mailboxes.list_mailboxes(
                    store, account_id, command, status_items=status_items, is_utf8=self.conn.is_utf8
                )
                for response in found:
                    self.send(response)
                return _Ok(text="LIST completed")
            case c.Lsub():
                for response in await mailboxes.lsub(store, account_id, command):
                    self.send(response)
                return _Ok(text="LSUB completed")
            case c.Namespace():
                self.send(mailboxes.namespace())
                return _Ok(text="NAMESPACE completed")
            case c.Status():
                append_limit = self.settings.limits.max_append
                self.send(
                    await mailboxes.status(
                        store,
                        account_id,
                        command,
                        append_limit=append_limit,
                        is_utf8=self.conn.is_utf8,
                        recent=context.recent,
                    )
                )
                if c.StatusItem.HIGHESTMODSEQ in command.items:
                    self.conn.enable("CONDSTORE")  # RFC 7162 §3.1
                return _Ok(text="STATUS completed")
            case c.Idle():
                await self._idle(tag)
                return None
            case c.GetQuota():
                for response in await quota.get_quota(store, account_id, command):
                    self.send(response)
                return _Ok(text="GETQUOTA completed")
            case c.GetQuotaRoot():
                for response in await quota.get_quota_root(store, account_id, command, is_utf8=self.conn.is_utf8):
                    self.send(response)
                return _Ok(text="GETQUOTAROOT completed")
            case c.SetQuota():
                quota.set_quota(command)
        return await self._selected_command(tag, command)

    async def _selected_command(self, tag: str, command: c.CommandType) -> _Ok | None:
        context, selected = self.context, self._selected()
        if "CONDSTORE" not in self.conn.enabled and _enables_condstore(command):
            self.conn.enable("CONDSTORE")  # RFC 7162 §3.1: the first CONDSTORE-enabling command
            modseq = Code(name="HIGHESTMODSEQ", value=b"%d" % selected.modseq)
            self.send(Condition(status=Status.OK, code=modseq, text="CONDSTORE enabled"))
        is_condstore = "CONDSTORE" in self.conn.enabled
        is_qresync = "QRESYNC" in self.conn.enabled
        match command:
            case c.Close():
                if not selected.is_read_only:  # RFC 9051 §6.4.1: expunge silently
                    deleted = [uid for uid in selected.uids if messages.DELETED in selected.flags[uid]]
                    if deleted:
                        await context.store.expunge(selected.mailbox_id, deleted)
                self.selected = None
                return _Ok(text="CLOSE completed")
            case c.Unselect():
                self.selected = None
                return _Ok(text="UNSELECT completed")
            case c.Expunge():
                await messages.expunge(context, selected, command, self, is_qresync=is_qresync)
                return _Ok(text="EXPUNGE completed")
            case c.Fetch():
                await messages.fetch(context, selected, command, self, saved=self.saved, is_condstore=is_condstore)
                return _Ok(text="FETCH completed")
            case c.Search():
                new_saved = await messages.search_messages(
                    context, selected, command, self, tag=tag, saved=self.saved, is_rev2=self.conn.is_rev2
                )
                if new_saved is not None:
                    self.saved = new_saved
                return _Ok(text="SEARCH completed")
            case c.Store():
                code = await messages.store_flags(
                    context, selected, command, self, saved=self.saved, is_condstore=is_condstore
                )
                return _Ok(text="STORE completed", code=code)
            case c.Copy():
                account_id = self._account_id()
                code = await messages.copy(
                    context, account_id, selected, command, self, saved=self.saved, is_qresync=is_qresync
                )
                if not command.is_move:
                    self._dirty.set()  # a copy into the selected mailbox shows up as EXISTS
                return _Ok(text="MOVE completed" if command.is_move else "COPY completed", code=code)
        raise AssertionError(f"unhandled command {command!r}")

    def _account_id(self) -> int:
        if self.account is None:  # the core allows these commands only once authenticated
            raise AssertionError("command needs an authenticated session")
        return self.account.id

    def _selected(self) -> Selected:
        if self.selected is None:
            raise AssertionError("command needs a selected mailbox")
        return self.selected

    # ---- capabilities and ENABLE -------------------------------------------------------------------------------

    def _is_private(self) -> bool:
        """Plain-text passwords only over TLS or from this machine (RFC 9051 §6.2.3, like Dovecot)."""
        return self.stream.is_tls or self.stream.is_loopback

    def _capabilities(self) -> tuple[str, ...]:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if self.account is None:
            if self.settings.tls is not None and not self.stream.is_tls:
                caps.append("STARTTLS")
            caps.append("AUTH=SCRAM-SHA-256")
            if self._is_private():
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            else:
                caps.append("LOGINDISABLED")
        caps += [
            "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
            "CREATE-SPECIAL-USE", "CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "BINARY", "STATUS=SIZE",
            "MULTIAPPEND", f"APPENDLIMIT={self.settings.limits.max_append}", "WITHIN", "SAVEDATE", "OBJECTID",
            *quota.CAPABILITIES,
        ]  # fmt: skip
        return tuple(caps)

    def _capability_code(self) -> Code:
        return Code(name="CAPABILITY", value=" ".join(self._capabilities()).encode())

    def _enable(self, capabilities: tuple[str, ...]) -> _Ok:
        newly = [cap for cap in capabilities if cap in ENABLEABLE and cap not in self.conn.enabled]
        if "QRESYNC" in newly:
            self.conn.enable("CONDSTORE")  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        self.send(EnabledData(capabilities=tuple(dict.fromkeys(newly))))
        return _Ok(text="ENABLE completed")

    # ---- STARTTLS, LOGIN, AUTHENTICATE -------------------------------------------------------------------------

    async def _start_tls(self, tag: str) -> None:
        context = self.settings.tls
        if context is None or self.stream.is_tls:
            self.send(Tagged(tag=tag, status=Status.BAD, text="STARTTLS not available"))
            return
        self.send(Tagged(tag=tag, status=Status.OK, text="begin TLS negotiation now"))
        discarded = await self.stream.start_tls(context)
        if discarded:
            log.warning("imap peer=%s pipelined %d octets after STARTTLS; discarded", self.stream.peer_host, discarded)
        self.conn.tls_established()

    async def _login(self, user: str, password: str) -> _Ok:
        if not self._is_private():
            raise Refusal.no("use STARTTLS first", "PRIVACYREQUIRED")  # RFC 9051 §6.2.3
        account = await check_password(self.context.store, user, password)
        if account is None:
            await self._failed_login()
        assert account is not None
        return self._logged_in(account)

    async def _failed_login(self) -> None:
        await asyncio.sleep(self.settings.failure_delay)
        log.info("imap login failed peer=%s", self.stream.peer_host)
        raise Refusal.no("invalid credentials", "AUTHENTICATIONFAILED")

    def _logged_in(self, account: Account) -> _Ok:
        self.account = account
        self._watcher = asyncio.ensure_future(self._watch(account.id))
        log.info("imap login peer=%s user=%s", self.stream.peer_host, account.address)
        return _Ok(text="logged in", code=self._capability_code())

    async def _watch(self, account_id: int) -> None:
        async for _ in self.context.store.watch(account_id):
            self._dirty.set()
            self.stream.poke()  # an IDLE read in progress gives way to the push

    async def _authenticate(self, tag: str, command: c.Authenticate) -> None:
        mechanism = sasl.new_mechanism(command.mechanism)
        if mechanism is None:
            self.send(Tagged(tag=tag, status=Status.NO, text="unsupported mechanism", code=Code(name="CANNOT")))
            return
        if command.mechanism in PLAINTEXT_MECHANISMS and not self._is_private():
            code = Code(name="PRIVACYREQUIRED")
            self.send(Tagged(tag=tag, status=Status.NO, text="use STARTTLS first", code=code))
            return
        self._exchange = auth.Exchange(self.context.store, mechanism)
        await self._auth_outcome(tag, await self._exchange.start(command.initial_response))

    async def _auth_outcome(self, tag: str, outcome: auth.Outcome) -> None:
        if isinstance(outcome, auth.Challenge):
            self.send(Continuation(text=outcome.text))
            return
        self._exchange = None
        try:
            if outcome.account is None:
                await self._failed_login()
            assert outcome.account is not None
            result = self._logged_in(outcome.account)
        except Refusal as refusal:
            self.send(Tagged(tag=tag, status=refusal.status, text=refusal.text, code=refusal.code))
            return
        self.send(Tagged(tag=tag, status=Status.OK, text=result.text, code=result.code))

    # ---- SELECT, IDLE and the updates of the selected mailbox ------------------------------------------------

    async def _select(self, command: c.Select) -> _Ok:
        if self.selected is not None:
            self.selected = None
            self.send(Condition(status=Status.OK, code=Code(name="CLOSED"), text="previous mailbox closed"))
        store = self.context.store
        name = mailboxes.check_name(command.mailbox)
        self._dirty.clear()
        mailbox = await store.get_mailbox(self._account_id(), name)
        if mailbox is None:
            raise Refusal.no("no such mailbox", "NONEXISTENT")
        if command.is_condstore:
            self.conn.enable("CONDSTORE")  # RFC 7162 §3.1.8
        selected = Selected(
            mailbox,
            await store.messages(mailbox.id),
            is_read_only=command.is_read_only,
            claims=self.context.recent,
            shows_recent=not self.conn.is_rev2,
        )
        for response in selected.opening(is_rev2=self.conn.is_rev2):
            self.send(response)
        code = Code(name="MAILBOXID", value=b"(%s)" % mailboxes.mailbox_id(mailbox).encode())
        self.send(Condition(status=Status.OK, code=code, text="mailbox id"))  # RFC 8474 §4.3
        qresync = command.qresync
        if qresync is not None and qresync.uidvalidity == mailbox.uidvalidity:  # RFC 7162 §3.2.5
            changes = await store.changes_since(mailbox.id, qresync.modseq)
            for response in selected.resync(changes, known_uids=qresync.known_uids):
                self.send(response)
        self.selected = selected
        self.saved = []
        access = "READ-ONLY" if command.is_read_only else "READ-WRITE"
        return _Ok(text=f"{'EXAMINE' if command.is_read_only else 'SELECT'} completed", code=Code(name=access))

    async def _push_updates(self, *, allow_expunge: bool, must_poll: bool = False) -> None:
        selected = self.selected
        if selected is None:
            self._dirty.clear()
            return
        if must_poll or self._dirty.is_set():
            self._dirty.clear()
            await selected.poll(self.context.store)
        enabled = self.conn.enabled
        for response in selected.updates(
            allow_expunge=allow_expunge, is_qresync="QRESYNC" in enabled, is_condstore="CONDSTORE" in enabled
        ):
            self.send(response)

    async def _idle(self, tag: str) -> None:
        """RFC 2177: send what is owed, then push changes until DONE."""
        await self._push_updates(allow_expunge=True, must_poll=True)
        self.send(Continuation(text="idling"))
        self._idle_tag = tag

    async def _idle_read(self) -> bytes:
        """Wait for DONE, pushing changes meanwhile. IDLE outlives the listener's idle timeout up to
        :data:`IDLE_LIMIT` (RFC 9051 §5.4: at least 30 minutes of inactivity are allowed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_LIMIT
        while True:
            try:
                return await self._read_or_push()
            except IdleTimeout:
                if loop.time() >= deadline:
                    raise

    async def _read_or_push(self) -> bytes:
        while True:
            if self._dirty.is_set():
                await self._push_updates(allow_expunge=True)
                await self.stream.drain()
                continue
            try:
                return await self.stream.read(interruptible=True, pokeable=True)
            except ReadInterrupted:  # _watch saw a commit: push it
                continue

    # ---- APPEND ------------------------------------------------------------------------------------------------

    async def _append_start(self, event: AppendStart) -> None:
        if event.index == 1:
            self._append_refusal = None
            try:
                self._upload = await open_upload(self.context, self._account_id(), event)
            except Refusal as exc:
                self._append_refusal = exc
            except StoreError as exc:
                self._append_refusal = refusal_for(exc, is_target=True)
        refusal = self._append_refusal
        if refusal is not None or self._upload is None:
            if event.is_sync:  # refuse now; a non-synchronising literal must be read first (RFC 7888)
                refusal = refusal or Refusal.no("APPEND failed")
                self._drop_upload()
                self.send(Tagged(tag=event.tag, status=refusal.status, text=refusal.text, code=refusal.code))
            return
        self._upload.start(event)
        if event.is_sync:
            self.send(Continuation())

    async def _append_message_end(self) -> None:
        if self._upload is None:
            return
        try:
            await self._upload.end_message()
        except StoreError as exc:
            self._append_refusal = refusal_for(exc, is_target=True)
            self._drop_upload()

    async def _append_end(self, tag: str) -> None:
        upload, refusal = self._upload, self._append_refusal
        self._upload = self._append_refusal = None
        if refusal is not None or upload is None:
            self._drop_upload(upload)
            await self._complete(tag, c.Noop(), refusal or Refusal.no("APPEND failed"))
            return
        try:
            code = await upload.commit()
        except Refusal as failure:
            await self._complete(tag, c.Noop(), failure)
            return
        if self.selected is not None and self.selected.mailbox_id == upload.mailbox.id:
            self._dirty.set()  # RFC 9051 §6.3.12: the new message shows up as EXISTS
        await self._complete(tag, c.Noop(), _Ok(text="APPEND completed", code=code))

    def _drop_upload(self, upload: Upload | None = None) -> None:
        for item in (upload, self._upload):
            if item is not None:
                item.abort()
        self._upload = None


def _enables_condstore(command: c.CommandType) -> bool:
    """RFC 7162 §3.1: FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE."""
    match command:
        case c.Fetch():
            return c.FetchAttribute.MODSEQ in command.items or command.changed_since is not None
        case c.Search():
            return search.uses_modseq(command.criteria)
        case c.Store():
            return command.unchanged_since is not None
    return False
