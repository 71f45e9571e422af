from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pochta.config import Sieve

from .harness import Sieved, running_sieved


@pytest.fixture
async def sieve(tmp_path: Path) -> AsyncIterator[Sieved]:
    async with running_sieved(tmp_path, sieve=Sieve(max_scripts=3, max_script_size=200)) as running:
        await running.add_user("alice@example.test")
        yield running
