"""The shared MIME corpus (../shared/data/mime): every regular file that is a message or could be one."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SHARED_DATA, need

_NOT_MESSAGES = {".json", ".png", ".jpg", ".doc", ".md"}


def corpus() -> list[Path]:
    root = SHARED_DATA / "mime"
    need(root.is_dir(), f"the MIME corpus is missing at {root}")
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in _NOT_MESSAGES and "LICENSE" not in path.name
    )
    assert len(files) > 300
    return files
