"""The spam filter's tables: count changes, training records, allow/block lists, removal with the account."""

from __future__ import annotations

import pytest

from pochta.accounts import hash_password
from pochta.store.api import (
    GLOBAL_MODEL,
    AlreadyExists,
    NotFound,
    SpamForgotten,
    SpamListEntry,
    SpamTraining,
    Store,
)


async def test_counts_never_go_below_zero_and_empty_rows_go(store: Store) -> None:
    assert await store.spam_generation(GLOBAL_MODEL) == 0
    first = await store.train_spam(
        SpamTraining(account_id=GLOBAL_MODEL, deltas={"a": (2, 0), "b": (0, 1)}, spam=2, ham=1, trained={"m1": True})
    )
    second = await store.train_spam(
        SpamTraining(account_id=GLOBAL_MODEL, deltas={"a": (-1, 1), "b": (0, -5), "c": (-1, 0)}, ham=-3)
    )
    assert (first, second) == (1, 2)
    model = await store.spam_model(GLOBAL_MODEL)
    assert model.tokens == {"a": (1, 1)} and (model.spam, model.ham, model.generation) == (2, 0, 2)
    assert await store.spam_totals(GLOBAL_MODEL) == (2, 0) and await store.spam_totals(7) == (0, 0)
    await store.train_spam(SpamTraining(account_id=GLOBAL_MODEL, deltas={}, trained={"m1": False, "m2": True}))
    assert await store.spam_trained(GLOBAL_MODEL, ["m1", "m2", "m3"]) == {"m1": False, "m2": True}
    await store.train_spam(SpamTraining(account_id=GLOBAL_MODEL, deltas={}, trained={"m1": None}))
    assert await store.spam_trained(GLOBAL_MODEL, ["m1", "m2"]) == {"m2": True}
    assert (await store.spam_model(7)).tokens == {}  # models are apart


async def test_a_forgotten_model_keeps_nothing_it_was_taught_but_its_lists(store: Store) -> None:
    for account_id in (GLOBAL_MODEL, 7):
        await store.train_spam(
            SpamTraining(
                account_id=account_id,
                deltas={"a": (1, 0)},
                words={"a": 0.5},
                grams={42: -0.25},
                spam=1,
                trained={"m1": True},
            )
        )
    await store.add_spam_list_entry(SpamListEntry(account_id=7, pattern="@x.example", is_block=True))
    assert await store.forget_spam_model(7) == SpamForgotten(spam=1, ham=0, generation=2)  # cached copies reload
    model = await store.spam_model(7)
    assert (model.tokens, model.words, model.grams, model.spam, model.ham) == ({}, {}, {}, 0, 0)
    assert await store.spam_totals(7) == (0, 0)
    assert await store.spam_trained(7, ["m1"]) == {}
    assert [e.pattern for e in await store.spam_list([7])] == ["@x.example"]
    assert (await store.spam_model(GLOBAL_MODEL)).words == {"a": 0.5}  # other models are untouched
    assert await store.forget_spam_model(8) == SpamForgotten(spam=0, ham=0, generation=1)  # still a generation


async def test_lists(store: Store) -> None:
    await store.add_spam_list_entry(SpamListEntry(account_id=GLOBAL_MODEL, pattern="@spam.example", is_block=True))
    await store.add_spam_list_entry(SpamListEntry(account_id=3, pattern="friend@x.example", is_block=False))
    with pytest.raises(AlreadyExists):
        await store.add_spam_list_entry(SpamListEntry(account_id=3, pattern="friend@x.example", is_block=True))
    assert [e.pattern for e in await store.spam_list([GLOBAL_MODEL, 3])] == ["@spam.example", "friend@x.example"]
    assert await store.spam_list([4]) == []
    await store.remove_spam_list_entry(3, "friend@x.example")
    with pytest.raises(NotFound):
        await store.remove_spam_list_entry(3, "friend@x.example")


async def test_an_accounts_model_and_lists_go_with_it(store: Store) -> None:
    await store.add_domain("example.test")
    password_hash, scram = hash_password("secret words here")
    account = await store.add_account("alice@example.test", password_hash=password_hash, scram=scram)
    await store.train_spam(SpamTraining(account_id=account.id, deltas={"a": (1, 0)}, spam=1, trained={"m": True}))
    await store.add_spam_list_entry(SpamListEntry(account_id=account.id, pattern="@x.example", is_block=True))
    await store.remove_account("alice@example.test")
    model = await store.spam_model(account.id)
    assert (model.tokens, model.spam, model.generation) == ({}, 0, 0)
    assert await store.spam_trained(account.id, ["m"]) == {}
    assert await store.spam_list([account.id]) == []


async def test_weight_changes_add_up_and_go_with_the_account(store: Store) -> None:
    await store.train_spam(
        SpamTraining(account_id=GLOBAL_MODEL, deltas={}, words={"cheap": 1.5, "meeting": -2.0}, grams={7: 0.25})
    )
    generation = await store.train_spam(
        SpamTraining(account_id=GLOBAL_MODEL, deltas={}, words={"cheap": 0.5}, grams={7: -0.5, 2**32 - 1: 1.0})
    )
    model = await store.spam_model(GLOBAL_MODEL)
    assert generation == model.generation == 2
    assert model.words == {"cheap": 2.0, "meeting": -2.0} and model.grams == {7: -0.25, 2**32 - 1: 1.0}
    await store.add_domain("example.test")
    password_hash, scram = hash_password("secret words here")
    account = await store.add_account("alice@example.test", password_hash=password_hash, scram=scram)
    await store.train_spam(SpamTraining(account_id=account.id, deltas={}, words={"cheap": -1.0}, grams={7: 1.0}))
    assert (await store.spam_model(account.id)).words == {"cheap": -1.0}
    await store.remove_account("alice@example.test")
    user = await store.spam_model(account.id)
    assert (user.words, user.grams) == ({}, {})
    assert (await store.spam_model(GLOBAL_MODEL)).words == {"cheap": 2.0, "meeting": -2.0}
