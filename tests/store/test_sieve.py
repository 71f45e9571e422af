"""The Sieve store contract: scripts with one active per account, and the vacation/duplicate marks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pochta.store.api import AlreadyExists, Conflict, LimitReached, MarkKind, NotFound, Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def _account(store: Store, address: str = "alice@example.test") -> int:
    domain = address.rpartition("@")[2]
    if await store.get_domain(domain) is None:
        await store.add_domain(domain)
    return (await store.add_account(address, password_hash="$argon2id$x", scram=None)).id


async def test_put_get_list_and_replace(store: Store) -> None:
    account = await _account(store)
    first = await store.put_sieve_script(account, "main", "keep;")
    assert first.name == "main" and first.source == "keep;" and not first.is_active
    again = await store.put_sieve_script(account, "main", "discard;")
    assert again.id == first.id and again.version > first.version and again.source == "discard;"
    await store.put_sieve_script(account, "a", "keep;")
    assert [s.name for s in await store.list_sieve_scripts(account)] == ["a", "main"]
    found = await store.get_sieve_script(account, "main")
    assert found is not None and found.source == "discard;"
    assert await store.get_sieve_script(account, "missing") is None
    assert await store.get_sieve_script_by_id(first.id) == found


async def test_one_active_script(store: Store) -> None:
    account = await _account(store)
    other = await _account(store, "bob@example.test")
    one = await store.put_sieve_script(account, "one", "keep;")
    two = await store.put_sieve_script(account, "two", "keep;")
    await store.put_sieve_script(other, "one", "keep;")
    assert await store.active_sieve_scripts([account, other]) == []
    await store.activate_sieve_script(account, "one")
    await store.activate_sieve_script(account, "two")
    (active,) = await store.active_sieve_scripts([account, other])
    assert (active.account_id, active.script_id, active.version) == (account, two.id, two.version)
    assert not (await store.get_sieve_script(account, "one") or one).is_active
    replaced = await store.put_sieve_script(account, "two", "discard;")  # stays active, new version
    (active,) = await store.active_sieve_scripts([account])
    assert replaced.is_active and active.version == replaced.version
    with pytest.raises(NotFound):
        await store.activate_sieve_script(account, "missing")
    await store.activate_sieve_script(account, None)
    assert await store.active_sieve_scripts([account]) == []


async def test_delete_and_rename(store: Store) -> None:
    account = await _account(store)
    await store.put_sieve_script(account, "one", "keep;")
    await store.put_sieve_script(account, "two", "keep;")
    await store.activate_sieve_script(account, "one")
    with pytest.raises(Conflict):
        await store.delete_sieve_script(account, "one")  # RFC 5804 §2.10: not the active one
    with pytest.raises(AlreadyExists):
        await store.rename_sieve_script(account, "one", "two")
    await store.rename_sieve_script(account, "one", "three")
    renamed = await store.get_sieve_script(account, "three")
    assert renamed is not None and renamed.is_active
    await store.delete_sieve_script(account, "two")
    with pytest.raises(NotFound):
        await store.delete_sieve_script(account, "two")
    with pytest.raises(NotFound):
        await store.rename_sieve_script(account, "two", "four")
    assert [s.name for s in await store.list_sieve_scripts(account)] == ["three"]


async def test_script_count_limit(store: Store) -> None:
    account = await _account(store)
    await store.put_sieve_script(account, "one", "keep;", max_scripts=2)
    await store.put_sieve_script(account, "two", "keep;", max_scripts=2)
    await store.put_sieve_script(account, "two", "discard;", max_scripts=2)  # replacing is not a new script
    with pytest.raises(LimitReached):
        await store.put_sieve_script(account, "three", "keep;", max_scripts=2)


async def test_scripts_go_with_the_account(store: Store) -> None:
    account = await _account(store)
    await store.put_sieve_script(account, "one", "keep;")
    await store.remove_account("alice@example.test")
    assert await store.list_sieve_scripts(account) == []


async def test_marks_expire_and_are_set_once(store: Store) -> None:
    account = await _account(store)
    key = "handle\0bob@remote.test"
    assert not await store.has_sieve_mark(account, MarkKind.VACATION, key, now=NOW)
    results = await asyncio.gather(
        *(
            store.set_sieve_mark(account, MarkKind.VACATION, key, expires=NOW + timedelta(days=7), now=NOW)
            for _ in range(5)
        )
    )
    assert sorted(results) == [False, False, False, False, True]  # concurrent deliveries: one reply
    assert await store.has_sieve_mark(account, MarkKind.VACATION, key, now=NOW + timedelta(days=6))
    assert not await store.has_sieve_mark(account, MarkKind.DUPLICATE, key, now=NOW)
    later = NOW + timedelta(days=7)
    assert not await store.has_sieve_mark(account, MarkKind.VACATION, key, now=later)
    assert await store.set_sieve_mark(account, MarkKind.VACATION, key, expires=later + timedelta(days=7), now=later)


async def test_a_renewed_mark_takes_the_new_expiry(store: Store) -> None:
    account = await _account(store)
    first = NOW + timedelta(days=1)
    assert await store.set_sieve_mark(account, MarkKind.DUPLICATE, "id", expires=first, now=NOW)
    assert not await store.set_sieve_mark(account, MarkKind.DUPLICATE, "id", expires=first + timedelta(days=1), now=NOW)
    assert not await store.has_sieve_mark(account, MarkKind.DUPLICATE, "id", now=first)
    assert await store.set_sieve_mark(
        account, MarkKind.DUPLICATE, "id", expires=first + timedelta(days=1), now=NOW, is_renewed=True
    )
    assert await store.has_sieve_mark(account, MarkKind.DUPLICATE, "id", now=first)
