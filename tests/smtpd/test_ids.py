"""Transaction ids: cheap, 12 hex digits, never the same twice in a process."""

from __future__ import annotations

import re

from pochta.smtpd.session import transaction_ids


def test_ids_are_unique_hex():
    new_id = transaction_ids()
    ids = [new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{12}", value) for value in ids)


def test_each_source_starts_somewhere_else():
    # Two processes (or restarts) do not count through the same ids; 2**-48 odds of a false failure.
    assert transaction_ids()() != transaction_ids()()
