"""Who the mail is for and who may log in: address resolution over the Directory, and password checks.

Resolution order for a recipient (what Postfix's virtual maps and Dovecot's +detail do, in one place):
exact account, exact alias, the address without its ``+tag`` (account, then alias), the domain's
catch-all alias ``@domain``. Aliases expand recursively to accounts and external addresses; a loop or a
chain deeper than `MAX_ALIAS_DEPTH` stops the expansion of that branch.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import os
import re
import time
from dataclasses import dataclass

import argon2

from pochta.mail.address import Address, AddressError, parse_address
from pochta.proto import sasl
from pochta.proto.sasl import derive_scram_credentials
from pochta.store.api import Account, Directory, ScramCredentials

MAX_ALIAS_DEPTH = 10
SUBADDRESS_SEPARATOR = "+"  # RFC 5233
SCRAM_ITERATIONS = 10000  # RFC 7677 §4 asks for at least 4096

_hasher = argon2.PasswordHasher()  # argon2id, RFC 9106's second recommended profile (64 MiB, t=3)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so an unknown name costs the same time as a wrong password.
    Made at the first such login, not at import: one argon2 run (64 MiB) cost every start ~0.5 s."""
    return _hasher.hash(os.urandom(16).hex())


class PasswordError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    is_local: bool  # the address's domain is served here; if not, it is its own only forward
    accounts: tuple[Account, ...]  # local mailboxes, each once
    forwards: tuple[Address, ...]  # external addresses an alias expands to


def validate_password(password: str) -> None:
    if not password or not password.strip():
        raise PasswordError("empty password")
    if len(password) < 8:
        raise PasswordError("password shorter than 8 characters")
    if len(password.encode()) > 1024:
        raise PasswordError("password longer than 1024 octets")


def hash_password(password: str) -> tuple[str, ScramCredentials]:
    """The argon2id hash for PLAIN/LOGIN and the SCRAM-SHA-256 keys (RFC 5802 §3) for SCRAM."""
    validate_password(password)
    try:
        keys = derive_scram_credentials(password, iterations=SCRAM_ITERATIONS)
    except ValueError as exc:  # SASLprep refuses unassigned or prohibited characters
        raise PasswordError(f"password not allowed: {exc}") from exc
    scram = ScramCredentials(
        salt=keys.salt, iterations=keys.iterations, stored_key=keys.stored_key, server_key=keys.server_key
    )
    return _hasher.hash(password), scram


async def login_account(directory: Directory, username: str) -> Account | None:
    """The account a login name (an address) names, or None."""
    try:
        address = str(parse_address(username))
    except AddressError:
        return None
    return await directory.get_account(address)


def scram_credentials(account: Account | None) -> sasl.ScramCredentials | None:
    """The account's stored SCRAM-SHA-256 keys as the SASL core wants them (None: no such account)."""
    keys = account.scram if account is not None else None
    if keys is None:
        return None
    return sasl.ScramCredentials(
        salt=keys.salt, iterations=keys.iterations, stored_key=keys.stored_key, server_key=keys.server_key
    )


async def check_password(directory: Directory, username: str, password: str) -> Account | None:
    """The account if `password` is right for `username` (an address), else None. Constant work either way."""
    account = await login_account(directory, username)
    stored = account.password_hash if account else await asyncio.to_thread(_dummy_hash)
    if account is not None and _verified.recall(stored, password):
        return account
    ok = await asyncio.to_thread(_verify, stored, password)
    if ok and account is not None:
        _verified.remember(stored, password)
        return account
    return None


class _VerifiedCache:
    """Passwords verified lately, so a client that logs in again and again (phones, IMAP pools) costs
    one argon2 run per few minutes, not one per login (Dovecot's auth cache does the same). Only
    successes are kept, as a keyed hash with the stored hash in it: a changed password misses."""

    def __init__(self, *, ttl: float = 300.0, size: int = 10000) -> None:
        self._key = os.urandom(32)
        self._ttl = ttl
        self._size = size
        self._entries: dict[bytes, float] = {}

    def _digest(self, stored: str, password: str) -> bytes:
        return hmac.digest(self._key, stored.encode() + b"\0" + password.encode(), "sha256")

    def recall(self, stored: str, password: str) -> bool:
        expires = self._entries.get(self._digest(stored, password))
        return expires is not None and expires > time.monotonic()

    def remember(self, stored: str, password: str) -> None:
        if len(self._entries) >= self._size:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v > now}
            if len(self._entries) >= self._size:
                self._entries.clear()
        self._entries[self._digest(stored, password)] = time.monotonic() + self._ttl


_verified = _VerifiedCache()


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


async def resolve(directory: Directory, address: Address) -> Resolution | None:
    """Where mail for `address` goes; None when its domain is ours but nobody has that address.

    Breadth first, one directory read per alias level; a loop or a chain deeper than MAX_ALIAS_DEPTH
    stops that branch (the address itself still exists)."""
    accounts: dict[int, Account] = {}
    forwards: dict[str, Address] = {}
    seen = {str(address)}
    level = [address]
    for depth in range(MAX_ALIAS_DEPTH + 1):
        candidates = {str(a): _candidates(a) for a in level}
        found = await directory.lookup(
            [name for names in candidates.values() for name in names], [a.domain for a in level]
        )
        next_level: list[Address] = []
        for item in level:
            if item.domain not in found.domains:
                forwards.setdefault(str(item), item)
                continue
            for name in candidates[str(item)]:
                if name in found.accounts:
                    account = found.accounts[name]
                    accounts.setdefault(account.id, account)
                    break
                if name in found.aliases:
                    next_level += _targets(found.aliases[name].targets, seen)
                    break
            else:
                if depth == 0:
                    return None
        if not next_level:
            break
        level = next_level
    return Resolution(
        is_local=str(address) not in forwards, accounts=tuple(accounts.values()), forwards=tuple(forwards.values())
    )


def _targets(targets: tuple[str, ...], seen: set[str]) -> list[Address]:
    out = []
    for target in targets:
        try:
            address = parse_address(target)
        except AddressError:
            continue
        if str(address) not in seen:
            seen.add(str(address))
            out.append(address)
    return out


def _candidates(address: Address) -> list[str]:
    exact = str(address)
    names = [exact]
    base, separator, _ = address.local.partition(SUBADDRESS_SEPARATOR)
    if separator and base:
        names.append(str(Address(base, address.domain)))
    names.append(f"@{address.domain}")  # catch-all
    return names


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$")


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"1.5GiB"``, ``"0"`` (no limit) → octets (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 2G)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "_kmgt".index(unit.lower() or "_"))
