"""Logging: one key=value line per event on stderr, naming the process (port 25 may have several: see
mx_processes.py); protocol transcripts under `pochta.trace.<protocol>`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

TRACE = "pochta.trace"


def setup(level: str, *, trace: Sequence[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger(TRACE).setLevel(logging.CRITICAL)  # transcripts are off unless asked for
    for protocol in trace:
        logging.getLogger(f"{TRACE}.{protocol}").setLevel(logging.DEBUG)
