"""Identical reads at the same time share one round trip; later ones ask again."""

from __future__ import annotations

import asyncio

import pytest

from pochta.imapd.selected import SharedReads


async def test_concurrent_identical_reads_share_one_call() -> None:
    calls: list[int] = []
    gate = asyncio.Event()

    async def read() -> list[int]:
        calls.append(1)
        await gate.wait()
        return [1, 2, 3]

    shared = SharedReads()
    waiting = [asyncio.ensure_future(shared.read(("k", 1), read)) for _ in range(100)]
    other = asyncio.ensure_future(shared.read(("k", 2), read))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, other)
    assert all(result == [1, 2, 3] for result in results)
    assert len(calls) == 2  # one per key
    assert await shared.read(("k", 1), read) == [1, 2, 3]
    assert len(calls) == 3  # nothing is cached once answered


async def test_a_failure_reaches_every_waiter_and_one_leaving_does_not_cancel_the_rest() -> None:
    gate = asyncio.Event()

    async def read() -> int:
        await gate.wait()
        raise LookupError("store down")

    shared = SharedReads()
    leaving = asyncio.ensure_future(shared.read("k", read))
    staying = asyncio.ensure_future(shared.read("k", read))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    with pytest.raises(LookupError):
        await staying
    with pytest.raises(asyncio.CancelledError):
        await leaving
