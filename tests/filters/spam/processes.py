"""Running a piece of Python in fresh processes with different string hash seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]


def outputs_under_hash_seeds(code: str, seeds: tuple[str, ...]) -> set[str]:
    """What `code` prints in one process per PYTHONHASHSEED (from the project's root, so `tests.` imports)."""
    return {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in seeds
    }
