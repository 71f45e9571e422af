from __future__ import annotations

import pytest

from pochta.accounts import PasswordError, check_password, hash_password, parse_size, resolve
from pochta.mail.address import parse_address
from pochta.proto import sasl
from pochta.store.api import Store


async def _setup(store: Store) -> None:
    await store.add_domain("example.test")
    await store.add_domain("other.test")
    for user in ("alice", "bob", "Carol"):
        password_hash, scram = hash_password("correct horse")
        await store.add_account(f"{user}@example.test", password_hash=password_hash, scram=scram)


async def _resolve(store: Store, address: str) -> tuple[list[str], list[str]] | None:
    result = await resolve(store, parse_address(address))
    if result is None:
        return None
    return sorted(a.address for a in result.accounts), sorted(str(f) for f in result.forwards)


async def test_exact_tag_alias_list_and_catch_all(store: Store) -> None:
    await _setup(store)
    assert await _resolve(store, "alice@example.test") == (["alice@example.test"], [])
    assert await _resolve(store, "alice@EXAMPLE.test.") == (["alice@example.test"], [])
    assert await _resolve(store, "alice+lists@example.test") == (["alice@example.test"], [])
    assert await _resolve(store, "nobody@example.test") is None
    assert await _resolve(store, "Alice@example.test") is None  # local parts are exact
    assert await _resolve(store, "Carol@example.test") == (["Carol@example.test"], [])
    await store.add_alias("team@example.test", ["alice@example.test", "bob@example.test", "ext@remote.test"])
    assert await _resolve(store, "team@example.test") == (
        ["alice@example.test", "bob@example.test"],
        ["ext@remote.test"],
    )
    assert await _resolve(store, "team+x@example.test") == (
        ["alice@example.test", "bob@example.test"],
        ["ext@remote.test"],
    )
    await store.add_alias("@other.test", ["bob@example.test"])
    assert await _resolve(store, "anything@other.test") == (["bob@example.test"], [])
    assert await _resolve(store, "user@unserved.test") == ([], ["user@unserved.test"])
    unserved = await resolve(store, parse_address("user@unserved.test"))
    assert unserved is not None and not unserved.is_local
    team = await resolve(store, parse_address("team@example.test"))
    assert team is not None and team.is_local


async def test_alias_loops_and_duplicates_end(store: Store) -> None:
    await _setup(store)
    await store.add_alias("a@example.test", ["b@example.test", "alice@example.test"])
    await store.add_alias("b@example.test", ["a@example.test", "alice@example.test"])
    assert await _resolve(store, "a@example.test") == (["alice@example.test"], [])


async def test_password_check(store: Store) -> None:
    await _setup(store)
    account = await check_password(store, "alice@example.test", "correct horse")
    assert account is not None and account.address == "alice@example.test"
    assert await check_password(store, "alice@example.test", "wrong horse!") is None
    assert await check_password(store, "nobody@example.test", "correct horse") is None
    assert await check_password(store, "not an address", "correct horse") is None


def test_hash_gives_scram_keys_that_verify() -> None:
    password_hash, scram = hash_password("pencil pencil")
    assert password_hash.startswith("$argon2id$")
    expected = sasl.derive_scram_credentials("pencil pencil", salt=scram.salt, iterations=scram.iterations)
    assert (expected.stored_key, expected.server_key) == (scram.stored_key, scram.server_key)
    for bad in ("", "   ", "short"):
        with pytest.raises(PasswordError):
            hash_password(bad)


def test_sizes() -> None:
    assert parse_size("0") == 0
    assert parse_size("500M") == 500 * 2**20
    assert parse_size("2G") == 2 * 2**30
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size("100k") == 102400
    with pytest.raises(ValueError):
        parse_size("lots")


async def test_a_verified_password_is_remembered_and_a_new_one_is_not(store: Store) -> None:
    from pochta import accounts

    await _setup(store)
    account = await store.get_account("bob@example.test")
    assert account is not None
    assert not accounts._verified.recall(account.password_hash, "correct horse")
    assert await check_password(store, "bob@example.test", "correct horse") is not None
    assert accounts._verified.recall(account.password_hash, "correct horse")  # the next login skips argon2
    assert await check_password(store, "bob@example.test", "correct horse") is not None
    assert await check_password(store, "bob@example.test", "correct horse!") is None
    assert not accounts._verified.recall(account.password_hash, "correct horse!")  # failures are not kept
    password_hash, scram = hash_password("another horse")
    await store.set_password("bob@example.test", password_hash=password_hash, scram=scram)
    assert await check_password(store, "bob@example.test", "correct horse") is None  # the old one is gone
    assert await check_password(store, "bob@example.test", "another horse") is not None
