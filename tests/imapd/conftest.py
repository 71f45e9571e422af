from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Imap, running_imap


@pytest.fixture
async def imap(tmp_path: Path) -> AsyncIterator[Imap]:
    async with running_imap(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        yield server
