"""One real clamd for the whole test session (it starts in about a second, but once is enough)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..conftest import need
from .clamd import ClamdProcess, find_clamd


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdProcess]:
    binary = find_clamd()
    need(binary is not None, "clamd is not installed (apt-get install clamav-daemon)")
    assert binary is not None
    running = ClamdProcess.start(binary, tmp_path_factory.mktemp("clamd"))
    yield running
    running.stop()
