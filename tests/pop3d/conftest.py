from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Pop3, running_pop3


@pytest.fixture
async def pop3(tmp_path: Path) -> AsyncIterator[Pop3]:
    async with running_pop3(tmp_path) as running:
        await running.add_user("alice@example.test")
        yield running
