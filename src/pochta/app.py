"""Composition root: config → store + blobs → listeners → shutdown. The only module that picks backends."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pochta import log as log_setup
from pochta import pop3d, sieved
from pochta.accounts import hash_password
from pochta.archive.retention import Archiving, archiving
from pochta.config import Antivirus, Config, parse_host_port, parse_socket_address
from pochta.delivery import LocalDelivery, NoticeSender
from pochta.dns import DnsResolver
from pochta.filters.authcheck import AuthCheck, AuthSettings
from pochta.filters.clamav import Clamd, OnOversize, VirusCheck
from pochta.filters.pipeline import Check, Pipeline
from pochta.filters.spam.check import SpamCheck
from pochta.filters.spam.dnsbl import Blocklists
from pochta.filters.spam.learn import Learner
from pochta.filters.spam.models import Models
from pochta.imapd.service import handlers as imap_handlers
from pochta.mx_processes import READY, MxProcesses, inherited_sockets, read_config, stop_when_parent_goes
from pochta.net import Handler, Listener, Refusal, Stream
from pochta.outbound.connections import CacheLimits
from pochta.outbound.deliver import Relay
from pochta.outbound.mtasts import PolicyCache
from pochta.proto.smtp import Limits as SmtpLimits
from pochta.queue.runner import QueueRunner, RunnerSettings
from pochta.sieving import Sieving
from pochta.smtpd.auth import SmtpAuth
from pochta.smtpd.mx import MxPolicy
from pochta.smtpd.session import Session as SmtpSession
from pochta.smtpd.session import SessionSettings, transaction_ids
from pochta.smtpd.submission import SubmissionPolicy
from pochta.store.api import Store
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore
from pochta.tls import ensure_self_signed, server_context

log = logging.getLogger(__name__)

LOCAL_DOMAIN = "localhost"
LOCAL_USER = "me@localhost"
SWITCH_INTERVAL = 0.0005  # seconds a thread holds the GIL while another waits for it (see _shorten_switch_interval)


async def open_store(config: Config) -> Store:
    return await SqliteStore.open(config.data_path, fsync=config.storage.fsync)


def open_blobs(config: Config) -> FileBlobs:
    """The blobs beside the store: small ones in its database (see store/blobs.py), the rest as files."""
    return FileBlobs(config.data_path / "blobs", fsync=config.storage.fsync, database=config.data_path / DATABASE_NAME)


def has_store(config: Config) -> bool:
    """Whether the data directory holds a store already (a restore must not overwrite one)."""
    return (config.data_path / DATABASE_NAME).exists()


def tls_context(config: Config) -> ssl.SSLContext:
    if config.tls.cert:
        return server_context(Path(config.tls.cert), Path(config.tls.key))
    cert, key = ensure_self_signed(config.data_path / "tls", config.hostname)
    return server_context(cert, key)


@dataclass(frozen=True, slots=True)
class _Service:
    implicit_tls: bool
    refuse: Refusal


def _line(text: str) -> Callable[[Stream, str], bytes]:
    return lambda _stream, reason: text.format(reason=reason).encode() + b"\r\n"


# How each protocol turns a client away (connection caps, shutdown, or a service not built yet).
_SERVICES: dict[str, _Service] = {
    "smtp": _Service(implicit_tls=False, refuse=_line("421 4.7.0 {reason}, try again later")),
    "submission": _Service(implicit_tls=False, refuse=_line("421 4.7.0 {reason}, try again later")),
    "submissions": _Service(implicit_tls=True, refuse=_line("421 4.7.0 {reason}, try again later")),
    "imap": _Service(implicit_tls=False, refuse=_line("* BYE [UNAVAILABLE] {reason}")),
    "imaps": _Service(implicit_tls=True, refuse=_line("* BYE [UNAVAILABLE] {reason}")),
    "pop3": _Service(implicit_tls=False, refuse=_line("-ERR [SYS/TEMP] {reason}")),
    "pop3s": _Service(implicit_tls=True, refuse=_line("-ERR [SYS/TEMP] {reason}")),
    "managesieve": _Service(implicit_tls=False, refuse=_line('BYE (TRYLATER) "{reason}"')),
    "http": _Service(
        implicit_tls=False,
        refuse=_line("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"),
    ),
}


def _unavailable(name: str) -> Handler:
    """A protocol whose session is not built yet: the protocol's own 'not available' reply, then close."""
    refuse = _SERVICES[name].refuse

    async def handler(stream: Stream) -> None:
        stream.write(refuse(stream, "service not available on this node yet"))
        await stream.drain()

    return handler


class Server:
    """Every configured listener in one process, over one store; with `mx_sockets`, one of the extra MX
    processes instead (mx_processes.py): port 25 on those sockets, and nothing else."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] | None = None,  # transaction ids; smtpd.session.transaction_ids() by default
        auth_failure_delay: float = 1.0,
        mx_sockets: Sequence[socket.socket] | None = None,
    ) -> None:
        self.config = config
        self._mx_sockets = mx_sockets
        self._auth_failure_delay = auth_failure_delay  # seconds before a failed login is answered
        self._now = now
        self._new_id = new_id or transaction_ids()
        self.listeners: dict[str, Listener] = {}
        self.store: Store | None = None
        self.blobs: FileBlobs | None = None
        self.runner: QueueRunner | None = None
        self._runner_task: asyncio.Task[None] | None = None
        self.spam_models: Models | None = None
        self.spam_learner: Learner | None = None
        self._learner_task: asyncio.Task[None] | None = None
        self.archiving: Archiving | None = None  # journal, quota warnings, the retention task
        self._retention_task: asyncio.Task[None] | None = None
        self.mx_processes: MxProcesses | None = None

    @property
    def is_mx_process(self) -> bool:
        return self._mx_sockets is not None

    async def start(self) -> None:
        config = self.config
        self.store = await open_store(config)
        self.blobs = open_blobs(config)
        tls = await asyncio.to_thread(tls_context, config)
        handlers = self._handlers(tls)
        if self._mx_sockets is not None:
            listener = self._listener("smtp", handlers["smtp"], tls)
            await listener.adopt(self._mx_sockets)
            return
        try:
            for name in _SERVICES:
                addresses = getattr(config.listen, name)
                if not addresses:
                    continue
                listener = self._listener(name, handlers.get(name) or _unavailable(name), tls)
                await listener.bind(addresses)
            assert self.runner is not None
            self.store.hear_others(self.runner.wake)  # the MX processes, `pochta import`, the admin CLI
        except OSError:
            await self.stop()
            raise
        if config.smtp.processes > 1 and "smtp" in self.listeners:
            self.mx_processes = MxProcesses(config, self.listeners["smtp"].sockets, count=config.smtp.processes)
            await self.mx_processes.start()
        self._runner_task = asyncio.ensure_future(self.runner.run())
        if self.archiving is not None:
            self._retention_task = asyncio.ensure_future(self.archiving.task.run())
        if self.spam_learner is not None:
            self._learner_task = asyncio.ensure_future(self.spam_learner.run())
        missing = [name for name in self.listeners if name not in handlers]
        if missing:
            log.warning("not built yet, answering 'unavailable': %s", ", ".join(missing))

    def _listener(self, name: str, handler: Handler, tls: ssl.SSLContext) -> Listener:
        service, limits = _SERVICES[name], self.config.limits
        listener = Listener(
            name,
            handler,
            tls=tls if service.implicit_tls else None,
            idle_timeout=limits.idle_timeout,
            max_per_ip=limits.max_connections_per_ip,
            max_total=limits.max_connections,
            refuse=service.refuse,
        )
        self.listeners[name] = listener
        return listener

    def _handlers(self, tls: ssl.SSLContext) -> dict[str, Handler]:
        store, blobs, config = self.store, self.blobs, self.config
        assert store is not None and blobs is not None
        limits = SmtpLimits(
            max_message_size=config.smtp.max_message_size,
            max_header_size=config.smtp.max_header_size,
            max_recipients=config.smtp.max_recipients,
            max_errors=config.smtp.max_errors,
        )
        delivery = LocalDelivery(store, queue=store)
        self.runner = self._queue_runner(store, blobs, delivery)
        delivery.on_queued = self._on_queued
        self.archiving = archived = archiving(config, store, blobs, now=self._now)
        delivery.journal = archived.journal
        delivery.on_stored = archived.warnings.on_stored
        self.spam_models = Models(store)
        if config.spam.enabled and not self.is_mx_process:  # training comes from IMAP, in the main process
            self.spam_learner = Learner(models=self.spam_models, mailboxes=store, blobs=blobs)
        inbound, outgoing = self._pipelines(store)
        sieving = Sieving(
            store=store, blobs=blobs, hostname=config.hostname, now=self._now, max_redirects=config.sieve.max_redirects
        )
        mx = MxPolicy(
            directory=store,
            delivery=delivery,
            blobs=blobs,
            hostname=config.hostname,
            pipeline=inbound,
            sieving=sieving,
        )
        submission = SubmissionPolicy(
            directory=store,
            delivery=delivery,
            blobs=blobs,
            hostname=config.hostname,
            now=self._now,
            pipeline=outgoing,
            sieving=sieving,
        )
        smtp_settings = SessionSettings(
            hostname=config.hostname, limits=limits, tls=tls, now=self._now, new_id=self._new_id
        )
        failure_delay = self._auth_failure_delay

        async def smtp(stream: Stream) -> None:
            await SmtpSession(stream, settings=smtp_settings, policy=mx, blobs=blobs).run()

        async def submit(stream: Stream) -> None:
            auth = SmtpAuth(store, failure_delay=failure_delay)
            await SmtpSession(stream, settings=smtp_settings, policy=submission, blobs=blobs, auth=auth).run()

        return {
            "smtp": smtp,
            "submission": submit,
            "submissions": submit,
            **pop3d.handlers(store=store, blobs=blobs, config=config, tls=tls, auth_failure_delay=failure_delay),
            **imap_handlers(
                store=store,
                blobs=blobs,
                config=config,
                tls=tls,
                failure_delay=failure_delay,
                learner=self.spam_learner,
                on_stored=archived.warnings.on_stored,
            ),
            **sieved.handlers(store=store, config=config, tls=tls, auth_failure_delay=failure_delay),
        }

    def _pipelines(self, store: Store) -> tuple[Pipeline, Pipeline]:
        """The checks for mail arriving on the MX and for mail our users submit, in order."""
        config = self.config
        inbound: list[Check] = []
        outgoing: list[Check] = []
        resolver = DnsResolver(nameservers=config.dns.nameservers or None, timeout=config.dns.timeout)
        auth = config.auth
        if auth.enabled:  # first: the spam rules and Sieve read its facts
            sealers = frozenset(sealer.lower().rstrip(".") for sealer in auth.trusted_arc_sealers)
            settings = AuthSettings(
                hostname=config.hostname, dmarc_reject=auth.dmarc_reject, trusted_arc_sealers=sealers
            )
            inbound.append(AuthCheck(resolver, settings))
        if config.antivirus.clamd:
            virus = _virus_check(config.antivirus)
            inbound.append(virus)
            outgoing.append(virus)
        if config.spam.enabled and self.spam_models is not None:  # after auth and virus checks: reads their facts
            inbound.append(
                SpamCheck(
                    models=self.spam_models,
                    store=store,
                    blocklists=Blocklists(resolver, dnsbl=config.spam.dnsbl, uribl=config.spam.uribl),
                    junk_threshold=config.spam.junk_threshold,
                    reject_threshold=config.spam.reject_threshold,
                )
            )
        return Pipeline(inbound), Pipeline(outgoing)

    def _queue_runner(self, store: Store, blobs: FileBlobs, delivery: LocalDelivery) -> QueueRunner:
        config = self.config
        client_tls = ssl.create_default_context()
        client_tls.check_hostname = False  # opportunistic: most MX certificates do not match (RFC 7435)
        client_tls.verify_mode = ssl.CERT_NONE
        client_tls.minimum_version = ssl.TLSVersion.TLSv1_2

        verified_tls = ssl.create_default_context(cafile=config.outbound.ca_file or None)
        if config.outbound.ca_file:
            verified_tls.load_default_certs()  # the system's CAs as well as the extra ones
        verified_tls.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8461 §4.2
        resolver = DnsResolver(nameservers=config.dns.nameservers or None, timeout=config.dns.timeout)
        mta_sts = (
            PolicyCache(
                txt=resolver.txt,
                addresses=resolver.addresses,
                context=verified_tls,
                now=self._now,
                port=config.outbound.mta_sts_port,
            )
            if config.outbound.mta_sts
            else None
        )
        notices = NoticeSender(
            directory=store, queue=store, blobs=blobs, delivery=delivery, now=self._now, on_queued=self._on_queued
        )
        runner = QueueRunner(
            queue=store,
            blobs=blobs,
            resolver=resolver,
            mta_sts=mta_sts,
            settings=RunnerSettings(
                hostname=config.hostname,
                port=config.outbound.port,
                tls=client_tls if config.outbound.starttls else None,
                verified_tls=verified_tls,
                concurrency=config.outbound.concurrency,
                per_domain=config.outbound.per_domain,
                lease_seconds=config.outbound.lease_seconds,
                smarthost=parse_host_port(config.outbound.smarthost) if config.outbound.smarthost else None,
                relay=_relay(config),
                connections=CacheLimits(
                    max_uses=config.outbound.connection_reuse_count,
                    reuse_time_limit=config.outbound.connection_reuse_time,
                    idle_time_limit=config.outbound.connection_cache_time,
                ),
            ),
            send_notice=notices,
            now=self._now,
            shuffle=random.shuffle,
        )
        return runner

    def _on_queued(self) -> None:
        """Mail was queued: wake the queue runner, which for an MX process runs in the main one."""
        assert self.store is not None and self.runner is not None
        if self.is_mx_process:
            self.store.announce_queued()
        else:
            self.runner.wake()

    def ports(self, name: str) -> list[int]:
        return self.listeners[name].ports

    async def stop(self) -> None:
        grace = self.config.limits.shutdown_grace
        if self.mx_processes is not None:
            self.mx_processes.stop_starting()
        for listener in self.listeners.values():
            listener.stop_accepting()
        stopping = [listener.finish(grace) for listener in self.listeners.values()]
        if self.mx_processes is not None:
            stopping.append(self.mx_processes.stop(grace))
        if self.runner is not None:
            stopping.append(self.runner.stop(grace))
        if self.archiving is not None:
            self.archiving.task.stop()  # it finishes the batch in flight
            stopping.append(self.archiving.warnings.close())
        await asyncio.gather(*stopping)
        if self._retention_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._retention_task, grace)
        if self.archiving is not None:
            self.archiving.journal.close()
        for task in (self._runner_task, self._learner_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self.blobs is not None:
            self.blobs.close()
            self.blobs = None


def _virus_check(antivirus: Antivirus) -> VirusCheck:
    clamd = Clamd(
        parse_socket_address(antivirus.clamd), timeout=antivirus.timeout, connect_timeout=antivirus.connect_timeout
    )
    return VirusCheck(
        clamd,
        fail_open=antivirus.fail_open,
        on_oversize=OnOversize(antivirus.on_oversize),
        max_scan_size=antivirus.max_scan_size,
    )


def _relay(config: Config) -> Relay | None:
    outbound = config.outbound
    if not outbound.smarthost:
        return None
    password = ""
    if outbound.smarthost_password_file:
        password = Path(outbound.smarthost_password_file).read_text().splitlines()[0].strip()
    return Relay(
        is_implicit_tls=outbound.smarthost_tls == "implicit", username=outbound.smarthost_user, password=password
    )


async def _serve(config: Config) -> int:
    server = Server(config)
    stop = asyncio.Event()
    _stop_on_signals(stop)  # before the first port opens: a SIGTERM is never lost
    try:
        await server.start()
    except OSError as exc:
        print(f"pochta: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _settle_garbage_collector()
    _shorten_switch_interval()
    log.info("pochta started hostname=%s data_dir=%s", config.hostname, config.data_dir)
    _notify_service_manager("READY=1")
    await stop.wait()
    _notify_service_manager("STOPPING=1")
    log.info("stopping: no new connections, %.0f s for open sessions", config.limits.shutdown_grace)
    await server.stop()
    log.info("stopped")
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


def _notify_service_manager(state: str) -> None:
    """systemd's Type=notify (sd_notify(3)): when the service manager asked, by $NOTIFY_SOCKET, tell it
    that every listener (and MX process) is up, or that we are stopping."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as notify:
        try:
            notify.sendto(state.encode(), address)
        except OSError as exc:
            log.warning("could not tell the service manager %s: %s", state, exc)


async def _serve_mx(config: Config, sockets: Sequence[socket.socket]) -> int:
    """One extra MX process (mx_processes.py): until the main process closes our standard input."""
    server = Server(config, mx_sockets=sockets)
    stop = asyncio.Event()
    stop_when_parent_goes(asyncio.get_running_loop(), stop)
    _stop_on_signals(stop)  # Ctrl-C in a terminal reaches the whole process group
    await server.start()
    os.write(sys.stdout.fileno(), READY)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nobody reads the pipe from now on: a print must not fill it
    os.close(devnull)
    _settle_garbage_collector()
    _shorten_switch_interval()
    await stop.wait()
    await server.stop()
    return 0


def run_mx_process(fds: Sequence[int]) -> int:
    """The entry of `pochta mx-process`, started by the main process only."""
    config = read_config(sys.stdin.fileno())
    log_setup.setup(config.log.level, trace=config.log.trace)
    return _run(_serve_mx(config, inherited_sockets(fds)))


def _settle_garbage_collector() -> None:
    """What start-up made (modules, classes, config, compiled patterns: some 60 000 objects) lives as
    long as the process: freeze it out of the collector's passes, so an occasional full pass looks at
    what the sessions made since. Sessions make little cyclic garbage, so the young generation is
    collected every 10 000 allocations, not every 700. Under bench/smtp_in.sh (one connection per
    message) the passes took 18 µs per message; with this, a run of 5000 messages has none."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _shorten_switch_interval() -> None:
    """A thread that gives up the GIL around a blocking call (the store's COMMIT, a reader's query, a
    blob fsync) waits, once the call returns, until the event loop lets the GIL go: by default 5 ms, and
    every session waiting for its 250 waits with it. bench/smtp_in.sh with one connection per message:
    800-840 -> 915-945 msg/s when the writer thread still ran every statement, 975-990 -> 1,045-1,075
    with quick writes on the loop (engine.py); several messages per connection: no change either time.
    0.2 ms was no better than 0.5 ms."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def run_server(config: Config) -> int:
    log_setup.setup(config.log.level, trace=config.log.trace)
    return _run(_serve(config))


def _run(main: Coroutine[None, None, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        return asyncio.run(main)
    return int(uvloop.run(main))


async def seed_local_account(store: Store, config: Config, *, echo: Callable[[str], None]) -> None:
    """Local mode: with no domain at all, make me@localhost with a random password and print how to connect."""
    credentials = config.data_path / "local-account.txt"
    if await store.list_domains():
        if credentials.exists():
            echo(credentials.read_text())
        return
    password = secrets.token_urlsafe(12)
    password_hash, scram = hash_password(password)
    await store.add_domain(LOCAL_DOMAIN)
    await store.add_account(LOCAL_USER, password_hash=password_hash, scram=scram)
    listen = config.listen
    text = "\n".join(
        (
            "Pochta local mode: one account was created for you.",
            f"  address / login: {LOCAL_USER}",
            f"  password:        {password}",
            f"  IMAP:            {', '.join(listen.imap)} (STARTTLS) or {', '.join(listen.imaps)} (TLS)",
            f"  POP3:            {', '.join(listen.pop3)} (STLS) or {', '.join(listen.pop3s)} (TLS)",
            f"  SMTP submission: {', '.join(listen.submission)} (STARTTLS) or {', '.join(listen.submissions)} (TLS)",
            f"  SMTP (MX):       {', '.join(listen.smtp)}",
            "  The TLS certificate is self-signed: accept it in your client, or use plain text from 127.0.0.1.",
            f"  (kept in {credentials})",
            "",
        )
    )
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text(text)
    credentials.chmod(0o600)
    echo(text)
