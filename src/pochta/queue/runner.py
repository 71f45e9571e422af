"""The queue runner: claims due entries with a lease, delivers them, records one answer per recipient,
and sends the sender a DSN for failures (and one delay notice).

A worker that dies mid-delivery keeps its lease until it runs out; then the entry is claimed again, so
nothing is lost. A recipient the remote accepted (250) is recorded at once, before QUIT, and never
sent again; a crash between the remote's 250 and that record is the one window where SMTP itself may
duplicate (RFC 5321 §6.1). An entry whose lease ran out while it waited here for a slot is not started
a second time when the next claim hands it back to us.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pochta.mail.address import Address, AddressError, parse_address
from pochta.mail.envelope import Envelope, Recipient
from pochta.outbound.connections import CacheLimits, ConnectionCache
from pochta.outbound.deliver import Relay, Target, deliver
from pochta.outbound.mtasts import Mode, PolicyCache
from pochta.outbound.mx import Resolver, Unroutable, find_route
from pochta.proto.smtp.client import MailRequest, Outcome, RecipientRequest, RecipientResult
from pochta.proto.smtp.events import Body, Notify, Orcpt, Ret
from pochta.proto.smtp.replies import Reply
from pochta.queue.dsn import Action, RecipientStatus, Report, build_report, notices_to_send
from pochta.queue.retry import RetryPolicy, is_delay_notice_due, next_attempt, retry_until
from pochta.store.api import Attempt, Blobs, QueueEntry, QueueStore, RecipientState

log = logging.getLogger(__name__)

_ACTIVE = 4  # times `concurrency`: the entries held (delivering, waiting for a slot, or being recorded)

SendNotice = Callable[[Report], Awaitable[None]]  # makes a DSN durable: local delivery or the queue


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerSettings:
    hostname: str
    port: int = 25  # RFC 5321 §4.5.4.2
    tls: ssl.SSLContext | None = None  # opportunistic STARTTLS; None: never
    concurrency: int = 20
    per_domain: int = 20
    lease_seconds: float = 900.0  # longer than one delivery may take (RFC 5321 timeouts add up to ~20 min)
    poll_seconds: float = 5.0  # how often to look for due entries when nothing wakes us
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    verified_tls: ssl.SSLContext | None = None  # certificate-checking client context, for MTA-STS domains
    smarthost: tuple[str, int] | None = None  # relay everything through this host instead of MX lookups
    relay: Relay | None = None  # TLS and credentials for the smarthost
    connections: CacheLimits = field(default_factory=CacheLimits)  # keeping connections for the next message


class QueueRunner:
    def __init__(
        self,
        *,
        queue: QueueStore,
        blobs: Blobs,
        resolver: Resolver,
        settings: RunnerSettings,
        send_notice: SendNotice,
        now: Callable[[], datetime],
        shuffle: Callable[[list[str]], None],
        owner: str | None = None,
        mta_sts: PolicyCache | None = None,
    ) -> None:
        self._mta_sts = mta_sts
        self._queue = queue
        self._blobs = blobs
        self._resolver = resolver
        self._settings = settings
        self._send_notice = send_notice
        self._now = now
        self._shuffle = shuffle
        self._owner = owner or f"{settings.hostname}-{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._domains: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()  # entry ids with an attempt under way (or waiting for a slot)
        self._stopping = False
        self._connections = ConnectionCache(settings.connections)

    def wake(self) -> None:
        """New mail was queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.run_once(wait=False)
            except Exception:
                log.exception("queue run failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            self._wake.clear()

    async def run_once(self, *, wait: bool = True) -> int:
        """Claim what is due and start delivering it; with `wait`, until every attempt has finished.

        Claims go in batches: up to four times `concurrency` entries are held (delivering, waiting for a
        slot as in Postfix's active queue, or being recorded), and a claim is made once at least
        `concurrency` of that room is free, so a steady flow costs one claim per `concurrency` messages,
        not one per message."""
        concurrency = self._settings.concurrency
        room = _ACTIVE * concurrency - len(self._tasks)
        entries = []
        if room >= concurrency:
            entries = await self._queue.claim(
                now=self._now(), owner=self._owner, lease_seconds=self._settings.lease_seconds, limit=room
            )
        for entry in entries:
            if entry.id in self._in_flight:  # its lease ran out while it waited for a slot: it is still ours
                continue
            self._in_flight.add(entry.id)
            task = asyncio.ensure_future(self._attempt_guarded(entry))
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        if wait and self._tasks:
            await asyncio.wait(set(self._tasks))
        return len(entries)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # a slot is free: maybe more is due

    async def stop(self, grace: float) -> None:
        """Finish attempts under way for up to `grace` seconds; the rest are retried after their lease."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self._connections.close()

    async def _attempt_guarded(self, entry: QueueEntry) -> None:
        domain_slots = self._domains.setdefault(entry.domain, asyncio.Semaphore(self._settings.per_domain))
        # the domain's slot first: an entry waiting for a busy domain must not hold a slot another domain could use
        slots = _Slots(domain_slots, self._slots)
        try:
            await slots.acquire()
            await self._attempt(entry, slots)
        except Exception:
            log.exception("queue attempt failed id=%d domain=%s; its lease will run out", entry.id, entry.domain)
        finally:
            slots.release()
            self._in_flight.discard(entry.id)

    async def _attempt(self, entry: QueueEntry, slots: _Slots) -> None:
        envelope = Envelope.loads(entry.envelope)
        by_address = {r.address: r for r in envelope.recipients}
        pending = [r for r in entry.recipients if r.state is RecipientState.PENDING]

        async def settle(outcomes: dict[Recipient, tuple[Outcome, Reply, str | None]]) -> None:
            slots.release()  # the remote is done with: the next delivery may start while this one is recorded
            await self._record(entry, envelope, outcomes)

        await self._deliver(
            entry, envelope, [by_address.get(r.address, Recipient(address=r.address)) for r in pending], settle=settle
        )

    async def _record(
        self, entry: QueueEntry, envelope: Envelope, outcomes: dict[Recipient, tuple[Outcome, Reply, str | None]]
    ) -> None:
        """One answer per recipient, durable: DSNs first, then the queue's record."""
        settings = self._settings
        now = self._now()
        retry_at = next_attempt(entry.created, entry.attempts + 1, now, policy=settings.policy)
        results: dict[str, tuple[RecipientState, str]] = {}
        statuses: list[RecipientStatus] = []
        still_pending: list[Recipient] = []
        for recipient, (found, answer, remote) in outcomes.items():
            outcome, reply = found, answer
            if found is Outcome.TEMPORARY and retry_at is None:
                outcome = Outcome.PERMANENT  # RFC 5321 §4.5.4.1: give up after the retry period
                reply = Reply(code=554, status="5.4.7", text=f"delivery time expired: {answer.lines[0]}")
            state = {
                Outcome.ACCEPTED: RecipientState.DELIVERED,
                Outcome.PERMANENT: RecipientState.FAILED,
                Outcome.TEMPORARY: RecipientState.PENDING,
            }[outcome]
            results[recipient.address] = (state, _text(reply))
            if state is RecipientState.FAILED:
                statuses.append(_status(recipient, Action.FAILED, reply, remote, now))
            elif state is RecipientState.PENDING:
                still_pending.append(recipient)
        delay_due = bool(still_pending) and is_delay_notice_due(
            entry.created, now, policy=settings.policy, was_sent=entry.is_delay_notified
        )
        if delay_due:
            until = retry_until(entry.created, policy=settings.policy)
            for recipient in still_pending:
                reply = Reply(code=450, status="4.4.1", text=results[recipient.address][1])
                statuses.append(_status(recipient, Action.DELAYED, reply, None, now, until=until))
        # The notice first, then the record: a crash in between repeats a notice, never loses one.
        await self._notify(entry, envelope, statuses, now)
        await self._queue.finish_attempt(
            entry.id,
            owner=self._owner,
            now=now,
            attempt=Attempt(
                results=results,
                next_attempt=retry_at if still_pending else None,
                error=next((r for s, r in results.values() if s is RecipientState.PENDING), None),
                is_delay_notified=delay_due,
            ),
        )
        delivered = sum(1 for s, _ in results.values() if s is RecipientState.DELIVERED)
        log.info(
            "queue attempt id=%d domain=%s delivered=%d failed=%d deferred=%d answers=%s",
            entry.id,
            entry.domain,
            delivered,
            sum(1 for s, _ in results.values() if s is RecipientState.FAILED),
            len(still_pending),
            "; ".join(sorted({text for state, text in results.values() if state is not RecipientState.DELIVERED})),
        )

    async def _deliver(
        self,
        entry: QueueEntry,
        envelope: Envelope,
        recipients: list[Recipient],
        *,
        settle: Callable[[dict[Recipient, tuple[Outcome, Reply, str | None]]], Awaitable[None]],
    ) -> None:
        """Deliver to `recipients`; `settle` gets one outcome per recipient, once, as soon as they are known."""
        settings = self._settings
        port = settings.port
        require_tls = False
        if settings.smarthost is not None:
            host_name, port = settings.smarthost
            hosts: tuple[str, ...] = (host_name,)
        else:
            route = await find_route(
                entry.domain, resolver=self._resolver, shuffle=self._shuffle, local_names=(settings.hostname,)
            )
            if isinstance(route, Unroutable):
                outcome = Outcome.PERMANENT if route.reply.code >= 500 else Outcome.TEMPORARY
                await settle({r: (outcome, route.reply, None) for r in recipients})
                return
            hosts = route.hosts
            policy = await self._mta_sts.policy(entry.domain) if self._mta_sts is not None else None
            if policy is not None and policy.mode is not Mode.NONE:
                allowed = tuple(h for h in hosts if policy.allows(h))
                if policy.mode is Mode.TESTING:  # RFC 8461 §5: report only, deliver as usual
                    if allowed != hosts:
                        log.info("mta-sts testing domain=%s hosts outside the policy: %s", entry.domain, hosts)
                else:
                    if not allowed:  # RFC 8461 §5: no host the policy names: keep the mail and retry
                        reply = Reply(code=451, status="4.7.5", text="no mail host matches the MTA-STS policy")
                        await settle({r: (Outcome.TEMPORARY, reply, None) for r in recipients})
                        return
                    hosts, require_tls = allowed, True
        targets: list[Target] = []
        for host in hosts:
            if _is_ip(host):  # a smarthost or MX given as an address needs no lookup
                targets.append(Target(host=host, address=host.strip("[]")))
                continue
            try:
                targets += [Target(host=host, address=a) for a in await self._resolver.addresses(host)]
            except Exception as exc:  # a host that does not resolve is skipped, like an unreachable one
                log.info("queue id=%d host=%s does not resolve: %s", entry.id, host, exc)
        requests: dict[str, Recipient] = {}
        wanted: list[RecipientRequest] = []
        outcomes: dict[Recipient, tuple[Outcome, Reply, str | None]] = {}
        for recipient in recipients:
            address = _address(recipient.address)
            if address is None:
                reply = Reply(code=553, status="5.1.3", text="bad recipient address")
                outcomes[recipient] = (Outcome.PERMANENT, reply, None)
                continue
            requests[str(address)] = recipient
            wanted.append(RecipientRequest(address=address, notify=_notify(recipient), orcpt=_orcpt(recipient)))
        if not wanted:
            await settle(outcomes)
            return
        request = MailRequest(
            mail_from=_address(envelope.mail_from) if envelope.mail_from else None,
            recipients=tuple(wanted),
            size=entry.size,
            body=Body(envelope.body) if envelope.body else None,
            is_smtputf8=envelope.is_smtputf8,
            ret=Ret(envelope.ret) if envelope.ret else None,
            envid=envelope.envid,
        )

        async def read(start: int, end: int) -> bytes:
            return await self._blobs.read(entry.blob_id, start, end)

        async def answered(results: tuple[RecipientResult, ...]) -> None:
            for result in results:
                outcomes[requests[str(result.address)]] = (result.outcome, result.reply, entry.domain)
            await settle(outcomes)

        await deliver(
            targets,
            request,
            port=port,
            read=read,
            size=entry.size,
            helo=settings.hostname,
            tls=settings.verified_tls if require_tls else settings.tls,
            relay=settings.relay if settings.smarthost is not None else None,
            settle=answered,
            require_tls=require_tls,
            cache=self._connections,
        )

    async def _notify(
        self, entry: QueueEntry, envelope: Envelope, statuses: list[RecipientStatus], now: datetime
    ) -> None:
        to_send = notices_to_send(envelope, statuses)
        if not to_send:
            return
        report = build_report(
            envelope=envelope,
            statuses=to_send,
            hostname=self._settings.hostname,
            arrival_date=entry.created,
            now=now,
            message_id=f"<{secrets.token_hex(12)}@{self._settings.hostname}>",
            original=await self._blobs.read(entry.blob_id),
        )
        await self._send_notice(report)


class _Slots:
    """The semaphores one delivery holds while it talks to the remote, taken in order, released once."""

    def __init__(self, *semaphores: asyncio.Semaphore) -> None:
        self._semaphores = semaphores
        self._held: list[asyncio.Semaphore] = []

    async def acquire(self) -> None:
        for semaphore in self._semaphores:
            await semaphore.acquire()
            self._held.append(semaphore)

    def release(self) -> None:
        while self._held:
            self._held.pop().release()


def _status(
    recipient: Recipient,
    action: Action,
    reply: Reply,
    remote: str | None,
    now: datetime,
    *,
    until: datetime | None = None,
) -> RecipientStatus:
    status = reply.status or f"{str(reply.code)[0]}.0.0"
    return RecipientStatus(
        recipient=recipient,
        action=action,
        status=status,
        reply=reply,
        remote_mta=remote,
        last_attempt_at=now,
        will_retry_until=until,
    )


def _is_ip(host: str) -> bool:
    if not (host.startswith("[") or ":" in host or host.rpartition(".")[2].isdigit()):
        return False  # a host name (its last label is never all digits): no exception to raise and catch
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _text(reply: Reply) -> str:
    status = f"{reply.status} " if reply.status else ""
    return f"{reply.code} {status}{' '.join(reply.lines)}"[:1000]


def _address(text: str) -> Address | None:
    try:
        return parse_address(text)
    except AddressError:
        return None


def _notify(recipient: Recipient) -> frozenset[Notify] | None:
    return frozenset(Notify(word) for word in recipient.notify) if recipient.notify else None


def _orcpt(recipient: Recipient) -> Orcpt | None:
    if not recipient.orcpt or ";" not in recipient.orcpt:
        return None
    addr_type, _, address = recipient.orcpt.partition(";")
    return Orcpt(addr_type=addr_type, address=address)
