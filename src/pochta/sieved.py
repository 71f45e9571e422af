"""One ManageSieve connection (RFC 5804): drives the sans-IO core (proto.managesieve) over a net.Stream.

Users upload, check, list, fetch, rename, delete and activate their Sieve scripts here; delivery runs
the active one. A script is parsed before it is stored (PUTSCRIPT refuses an invalid one with the
parser's ``line L:C: message``) and again at SETACTIVE, so the active script always parses. Each
account may keep ``[sieve] max_scripts`` scripts of at most ``max_script_size`` octets.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass, field

from pochta.accounts import check_password, login_account, scram_credentials
from pochta.config import Config
from pochta.filters.sieve import SUPPORTED_EXTENSIONS, SieveError, parse
from pochta.net import Handler, IdleTimeout, ShutdownRequested, Stream
from pochta.proto import sasl
from pochta.proto.managesieve import (
    AuthCancelled,
    Authenticate,
    AuthResponse,
    Capability,
    Challenge,
    CheckScript,
    Code,
    ConnectionClosed,
    DeleteScript,
    Event,
    GetScript,
    HaveSpace,
    InvalidCommand,
    Limits,
    ListScripts,
    Logout,
    NeedData,
    Noop,
    Paused,
    PutScript,
    RenameScript,
    Reply,
    ServerConnection,
    SetActive,
    StartTls,
    Unauthenticate,
    bye,
    no,
    ok,
    script_content,
    script_list,
)
from pochta.store.api import (
    Account,
    AlreadyExists,
    Conflict,
    LimitReached,
    NotFound,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)
trace = logging.getLogger("pochta.trace.managesieve")

AUTH_FAILURE_DELAY = 1.0  # seconds before a failed login is answered: slows password guessing


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    tls: ssl.SSLContext | None  # offered with STARTTLS when the stream is not TLS already
    max_scripts: int = 20
    max_script_size: int = 256 * 1024
    max_redirects: int = 4
    limits: Limits = field(default_factory=Limits)
    auth_failure_delay: float = AUTH_FAILURE_DELAY


def handlers(
    *, store: Store, config: Config, tls: ssl.SSLContext | None, auth_failure_delay: float = AUTH_FAILURE_DELAY
) -> dict[str, Handler]:
    sieve = config.sieve
    settings = SessionSettings(
        tls=tls,
        max_scripts=sieve.max_scripts,
        max_script_size=sieve.max_script_size,
        max_redirects=sieve.max_redirects,
        limits=Limits(max_literal=sieve.max_script_size),
        auth_failure_delay=auth_failure_delay,
    )

    async def managesieve(stream: Stream) -> None:
        await Session(stream, settings=settings, store=store).run()

    return {"managesieve": managesieve}


class _Refused(Exception):
    """Deep code's way to answer the pending command with NO."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def _store_error_reply(exc: StoreError) -> Reply:
    """The one place store failures become ManageSieve replies (RFC 5804 §1.3)."""
    match exc:
        case NotFound():
            return no("there is no script by that name", code=Code.NONEXISTENT)
        case AlreadyExists():
            return no("a script by that name exists", code=Code.ALREADYEXISTS)
        case Conflict():
            return no("the active script cannot be deleted", code=Code.ACTIVE)
        case LimitReached():
            return no("too many scripts", code=Code.QUOTA_MAXSCRIPTS)
        case _:
            return no("temporary server error, try again later", code=Code.TRYLATER)


class Session:
    def __init__(self, stream: Stream, *, settings: SessionSettings, store: Store) -> None:
        self.stream = stream
        self.settings = settings
        self.store = store
        self.conn = ServerConnection(
            limits=settings.limits,
            is_tls=stream.is_tls,
            is_loopback=stream.is_loopback,
            is_starttls_offered=settings.tls is not None and not stream.is_tls,
        )
        self.account: Account | None = None
        self._sasl: sasl.Mechanism | None = None
        self._sasl_account: Account | None = None

    def _write(self, reply: Reply | Challenge) -> None:
        data = self.conn.send(reply)
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("S: %s", data.rsplit(b"\r\n", 2)[-2].decode(errors="replace") if b"\r\n" in data else "")
        self.stream.write(data)

    def _capabilities(self) -> None:
        self._write(
            self.conn.capability_reply(
                extensions=SUPPORTED_EXTENSIONS,
                max_redirects=self.settings.max_redirects,
                owner=self.account.address if self.account else None,
            )
        )

    async def run(self) -> None:
        stream = self.stream
        peer = stream.peer_host
        log.info("managesieve connect peer=%s port=%d tls=%s", peer, stream.local_port, stream.is_tls)
        self._capabilities()  # RFC 5804 §1.7: the greeting is the capability listing
        try:
            await self._loop()
        except IdleTimeout:
            stream.write(self.conn.close(bye("connection idle for too long")))
        except ShutdownRequested:
            stream.write(self.conn.close(bye("server shutting down, try again later", code=Code.TRYLATER)))
        except ConnectionError:
            pass
        except Exception:
            log.exception("managesieve session failed peer=%s", peer)
            stream.write(self.conn.close(bye("local error, closing connection", code=Code.TRYLATER)))
        finally:
            user = self.account.address if self.account else "-"
            log.info("managesieve disconnect peer=%s user=%s", peer, user)

    async def _loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            match event:
                case NeedData():
                    await self.stream.drain()
                    conn.receive_data(await self.stream.read(interruptible=True))
                    continue
                case ConnectionClosed():
                    await self.stream.drain()
                    return
                case Paused():  # pragma: no cover - every event below is answered before the next
                    raise AssertionError("ManageSieve core paused with no reply owed")
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug("C: %s", _describe(event))
            try:
                await self._dispatch(event)
            except _Refused as refused:
                self._write(refused.reply)
            except StoreError as exc:
                if not conn.is_reply_due:
                    raise
                if not isinstance(exc, NotFound | AlreadyExists | Conflict | LimitReached):
                    log.warning("managesieve store error peer=%s: %s", self.stream.peer_host, exc)
                self._write(_store_error_reply(exc))

    async def _dispatch(self, event: Event) -> None:
        match event:
            case Capability():
                self._capabilities()
            case Authenticate():
                await self._authenticate(event)
            case AuthResponse(data=data):
                mechanism = self._sasl
                assert mechanism is not None  # the core reads responses only after a challenge
                await self._sasl_step(mechanism.respond(data))
            case AuthCancelled():
                self._end_sasl()
                self._write(no("authentication cancelled"))
            case StartTls():
                await self._starttls()
            case Logout():
                self._write(ok("logout completed"))
            case Noop(tag=tag):
                self._write(ok("done", code=Code.TAG, code_data=tag) if tag is not None else ok("done"))
            case Unauthenticate():
                self.account = None
                self._write(ok("unauthenticated"))
            case HaveSpace(name=name, size=size):
                await self._have_space(name, size)
                self._write(ok("putscript would succeed"))
            case PutScript(name=name, source=source):
                await self._put(name, source)
            case CheckScript(source=source):
                self._check(source)
                self._write(ok("script is valid"))
            case ListScripts():
                scripts = await self.store.list_sieve_scripts(self._account().id)
                self._write(script_list((s.name, s.is_active) for s in scripts))
            case SetActive(name=name):
                await self._set_active(name)
            case GetScript(name=name):
                script = await self.store.get_sieve_script(self._account().id, name)
                if script is None:
                    raise NotFound(name)
                self._write(script_content(script.source))
            case DeleteScript(name=name):
                await self.store.delete_sieve_script(self._account().id, name)
                self._write(ok("script deleted"))
            case RenameScript(old=old, new=new):
                await self.store.rename_sieve_script(self._account().id, old, new)
                self._write(ok("script renamed"))
            case InvalidCommand(reply=reply):
                self._write(reply)
            case _:  # pragma: no cover - NeedData, Paused and ConnectionClosed are handled by the loop
                raise AssertionError(f"unexpected event {event!r}")

    # ---- scripts ----------------------------------------------------------------------------------

    def _account(self) -> Account:
        account = self.account
        assert account is not None  # the core accepts these commands only when authenticated
        return account

    async def _have_space(self, name: str, size: int) -> None:
        """RFC 5804 §2.5: would a script of `size` octets named `name` fit?"""
        settings = self.settings
        if size > settings.max_script_size:
            raise _Refused(no(f"scripts are limited to {settings.max_script_size} octets", code=Code.QUOTA_MAXSIZE))
        if settings.max_scripts:
            scripts = await self.store.list_sieve_scripts(self._account().id)
            if len(scripts) >= settings.max_scripts and all(s.name != name for s in scripts):
                raise _Refused(no(f"at most {settings.max_scripts} scripts", code=Code.QUOTA_MAXSCRIPTS))

    def _check(self, source: str) -> None:
        if len(source.encode()) > self.settings.max_script_size:
            raise _Refused(
                no(f"scripts are limited to {self.settings.max_script_size} octets", code=Code.QUOTA_MAXSIZE)
            )
        try:
            parse(source)
        except SieveError as exc:
            raise _Refused(no(str(exc))) from exc  # RFC 5804 §2.6: the parser's message, for the user

    async def _put(self, name: str, source: str) -> None:
        self._check(source)
        account = self._account()
        await self.store.put_sieve_script(account.id, name, source, max_scripts=self.settings.max_scripts)
        log.info("managesieve put user=%s script=%r size=%d", account.address, name, len(source.encode()))
        self._write(ok("script stored"))

    async def _set_active(self, name: str) -> None:
        account = self._account()
        if name:
            script = await self.store.get_sieve_script(account.id, name)
            if script is None:
                raise NotFound(name)
            self._check(script.source)  # RFC 5804 §2.8: a script that no longer parses is not activated
        await self.store.activate_sieve_script(account.id, name or None)
        log.info("managesieve activate user=%s script=%r", account.address, name)
        self._write(ok("active script set" if name else "no script is active"))

    # ---- authentication ---------------------------------------------------------------------------

    async def _authenticate(self, event: Authenticate) -> None:
        mechanism = sasl.new_mechanism(event.mechanism)
        if mechanism is None:  # pragma: no cover - the core offers only mechanisms sasl knows
            raise _Refused(no("unknown SASL mechanism"))
        self._sasl = mechanism
        await self._sasl_step(mechanism.start(event.initial_response))

    async def _sasl_step(self, step: sasl.Step) -> None:
        mechanism = self._sasl
        assert mechanism is not None
        while True:
            match step:
                case sasl.Challenge(data=data):
                    self._write(Challenge(data=data))
                    return
                case sasl.NeedCredentials(authcid=authcid):
                    assert isinstance(mechanism, sasl.ScramSha256)
                    self._sasl_account = account = await login_account(self.store, authcid)
                    step = mechanism.credentials(scram_credentials(account))
                case sasl.CheckPassword(authcid=authcid, password=password):
                    self._end_sasl()
                    await self._login(await check_password(self.store, authcid, password), name=authcid)
                    return
                case sasl.Success(authcid=authcid, data=data):
                    account = self._sasl_account
                    self._end_sasl()
                    # RFC 5804 §2.1: SCRAM's server-final message rides on the OK as (SASL "...")
                    await self._login(account, name=authcid, server_final=data)
                    return
                case sasl.Failure(reason=reason, is_malformed=is_malformed):
                    self._end_sasl()
                    if not is_malformed:
                        log.info("managesieve login failed peer=%s reason=%s", self.stream.peer_host, reason)
                        await asyncio.sleep(self.settings.auth_failure_delay)
                    raise _Refused(no(f"authentication failed: {reason}" if is_malformed else "authentication failed"))

    async def _login(self, account: Account | None, *, name: str, server_final: bytes = b"") -> None:
        if account is None:
            log.info("managesieve login failed peer=%s user=%s", self.stream.peer_host, name)
            await asyncio.sleep(self.settings.auth_failure_delay)
            raise _Refused(no("authentication failed"))
        self.account = account
        log.info("managesieve login peer=%s user=%s tls=%s", self.stream.peer_host, account.address, self.stream.is_tls)
        if server_final:
            self._write(ok("logged in", code=Code.SASL, code_data=base64.b64encode(server_final).decode()))
        else:
            self._write(ok("logged in"))

    def _end_sasl(self) -> None:
        self._sasl = None
        self._sasl_account = None

    async def _starttls(self) -> None:
        context = self.settings.tls
        assert context is not None  # the core offers STARTTLS only with a context
        self._write(ok("begin TLS negotiation"))
        discarded = await self.stream.start_tls(context)
        if discarded:
            log.warning(
                "managesieve peer=%s pipelined %d octets after STARTTLS; discarded", self.stream.peer_host, discarded
            )
        self.conn.tls_established()
        self._capabilities()  # RFC 5804 §2.2


def _describe(event: Event) -> str:
    """An event for the transcript log, with SASL payloads and script bodies hidden."""
    match event:
        case Authenticate(mechanism=mechanism, initial_response=initial):
            return f"AUTHENTICATE {mechanism}" + (" ***" if initial is not None else "")
        case AuthResponse():
            return "***"
        case PutScript(name=name, source=source):
            return f"PUTSCRIPT {name!r} ({len(source)} characters)"
        case CheckScript(source=source):
            return f"CHECKSCRIPT ({len(source)} characters)"
        case _:
            return repr(event)
