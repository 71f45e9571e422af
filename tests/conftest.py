"""Shared fixtures: a real store in tmp_path (SQLite now; PostgreSQL joins the `store` parameters later)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pochta.store.api import Store
from pochta.store.blobs import FileBlobs
from pochta.store.sqlite import DATABASE_NAME, SqliteStore

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    """Skip with `reason` when a service or data set is missing; in CI, fail instead (CONVENTIONS.md)."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "data")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def blobs(tmp_path: Path, store: Store) -> Iterator[FileBlobs]:
    """The blobs beside `store`, as the server has them: small ones in its database."""
    opened = FileBlobs(tmp_path / "blobs", database=tmp_path / "data" / DATABASE_NAME)
    yield opened
    opened.close()
