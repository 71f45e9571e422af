"""AUTHENTICATE (RFC 9051 §6.2.2, SASL-IR RFC 4959) over proto.sasl: one exchange, step by step.

The session feeds the command and each client line; every step answers with what to send:
a challenge, or the end of the exchange (the account, or None for a refusal).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from pochta.accounts import check_password, login_account, scram_credentials
from pochta.proto import sasl
from pochta.store.api import Account, Directory


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """Send ``+ text`` and feed the client's next line to :meth:`Exchange.respond`."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    account: Account | None  # None: the credentials were wrong or the exchange broken


Outcome = Challenge | Finished


class Exchange:
    def __init__(self, directory: Directory, mechanism: sasl.Mechanism) -> None:
        self._directory = directory
        self._mechanism = mechanism
        self._verified: Account | None = None  # SCRAM done; waiting for the client's empty last line

    async def start(self, initial_response: bytes | None) -> Outcome:
        return await self._step(self._mechanism.start(initial_response))

    async def respond(self, data: bytes) -> Outcome:
        if self._verified is not None:  # the client acknowledged the server-final message
            return Finished(account=None if data else self._verified)
        return await self._step(self._mechanism.respond(data))

    async def _step(self, step: sasl.Step) -> Outcome:
        while isinstance(step, sasl.NeedCredentials):
            step = await self._credentials(step.authcid)
        match step:
            case sasl.Challenge(data=data):
                return Challenge(text=base64.b64encode(data).decode("ascii"))
            case sasl.CheckPassword(authcid=authcid, password=password):
                return Finished(account=await check_password(self._directory, authcid, password))
            case sasl.Success(authcid=authcid, data=data):
                account = await login_account(self._directory, authcid)
                if data and account is not None:  # RFC 9051 §6.2.2: server-final as a last challenge
                    self._verified = account
                    return Challenge(text=base64.b64encode(data).decode("ascii"))
                return Finished(account=account)
        return Finished(account=None)  # sasl.Failure

    async def _credentials(self, authcid: str) -> sasl.Step:
        mechanism = self._mechanism
        if not isinstance(mechanism, sasl.ScramSha256):
            raise AssertionError(f"{mechanism.name} asked for stored credentials")
        return mechanism.credentials(scram_credentials(await login_account(self._directory, authcid)))
