"""SMTP AUTH (RFC 4954) for a session: drives a proto.sasl mechanism, checks credentials in the directory.

A failed attempt is answered after a delay (brute-force damping, as Dovecot and Postfix do); the session
counts failures and the SMTP core's error limit closes a session that keeps trying.
"""

from __future__ import annotations

import asyncio
import logging

from pochta.accounts import check_password, login_account, scram_credentials
from pochta.proto import sasl
from pochta.proto.smtp import Reply, replies
from pochta.store.api import Account, Directory

log = logging.getLogger(__name__)

MALFORMED = Reply(code=501, status="5.5.2", text="malformed authentication exchange")  # RFC 4954 §4


class SmtpAuth:
    """One AUTH exchange at a time; `account` is set once one succeeds."""

    def __init__(self, directory: Directory, *, failure_delay: float) -> None:
        self._directory = directory
        self._failure_delay = failure_delay
        self._mechanism: sasl.Mechanism | None = None
        self._scram_account: Account | None = None
        self._pending_success: Account | None = None  # SCRAM: server-final sent, waiting for the empty line
        self.account: Account | None = None

    async def start(self, mechanism: str, initial_response: bytes | None, *, peer: str) -> Reply:
        self._mechanism = sasl.new_mechanism(mechanism)
        if self._mechanism is None:
            return replies.AUTH_MECHANISM_UNKNOWN
        return await self._advance(self._mechanism.start(initial_response), peer=peer)

    async def respond(self, data: bytes, *, peer: str) -> Reply:
        if self._pending_success is not None:  # RFC 4954 §4: the client answers the final data empty
            account, self._pending_success = self._pending_success, None
            return self._succeed(account, peer=peer) if not data else MALFORMED
        if self._mechanism is None:
            return MALFORMED
        return await self._advance(self._mechanism.respond(data), peer=peer)

    def cancel(self) -> Reply:
        self._reset()
        return replies.AUTH_CANCELLED

    async def _advance(self, step: sasl.Step, *, peer: str) -> Reply:
        while True:
            match step:
                case sasl.Challenge(data=data):
                    return replies.auth_challenge(data)
                case sasl.NeedCredentials(authcid=authcid):
                    self._scram_account = await login_account(self._directory, authcid)
                    mechanism = self._mechanism
                    assert isinstance(mechanism, sasl.ScramSha256)
                    step = mechanism.credentials(scram_credentials(self._scram_account))
                case sasl.CheckPassword(authcid=authcid, password=password):
                    account = await check_password(self._directory, authcid, password)
                    if account is None:
                        return await self._fail(f"bad password for {authcid!r}", peer=peer)
                    return self._succeed(account, peer=peer)
                case sasl.Success(data=data):
                    account = self._scram_account
                    if account is None:  # pragma: no cover - SCRAM never succeeds without credentials
                        return await self._fail("no account", peer=peer)
                    if data:
                        self._pending_success = account
                        return replies.auth_challenge(data)
                    return self._succeed(account, peer=peer)
                case sasl.Failure(reason=reason, is_malformed=is_malformed):
                    if is_malformed:
                        self._reset()
                        return MALFORMED
                    return await self._fail(reason, peer=peer)

    def _succeed(self, account: Account, *, peer: str) -> Reply:
        self._reset()
        self.account = account
        log.info("smtp auth ok user=%s peer=%s", account.address, peer)
        return replies.AUTH_SUCCEEDED

    async def _fail(self, reason: str, *, peer: str) -> Reply:
        self._reset()
        log.warning("smtp auth failed peer=%s reason=%s", peer, reason)
        await asyncio.sleep(self._failure_delay)
        return replies.AUTH_FAILED

    def _reset(self) -> None:
        self._mechanism = None
        self._scram_account = None
        self._pending_success = None
