"""When to try a queued message again: exponential backoff with a cap, a deadline and one delay notice.

Pure: the clock and the jitter are passed in. All datetimes are aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

Jitter = Callable[[timedelta], timedelta]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(minutes=5)  # before the second attempt
    factor: float = 2.0  # each delay is the previous one times this
    max_delay: timedelta = timedelta(
        hours=4
    )  # RFC 5321 §4.5.4.1: retry interval at least 30 min, give up after 4-5 days
    give_up_after: timedelta = timedelta(days=5)  # RFC 5321 §4.5.4.1: "at least 4-5 days"
    delay_notice_after: timedelta = timedelta(hours=4)  # RFC 3461 §4.1 DELAY; sent once

    def __post_init__(self) -> None:
        if self.first_delay <= timedelta(0) or self.factor < 1 or self.max_delay < self.first_delay:
            raise ValueError("retry delays must be positive and growing")


def no_jitter(delay: timedelta) -> timedelta:
    return delay


def proportional_jitter(fraction: float, random: Callable[[], float]) -> Jitter:
    """Spread each delay by up to ``fraction`` either way; ``random`` gives floats in [0, 1)."""

    def jitter(delay: timedelta) -> timedelta:
        return delay * (1 + fraction * (2 * random() - 1))

    return jitter


def _check(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("datetimes must be aware (UTC)")


def retry_until(first_attempt_at: datetime, *, policy: RetryPolicy) -> datetime:
    """When the queue gives up: the Will-Retry-Until of a delay notice (RFC 3464 §2.3.9)."""
    return first_attempt_at + policy.give_up_after


def next_attempt(
    first_attempt_at: datetime,
    attempts: int,
    now: datetime,
    *,
    policy: RetryPolicy,
    jitter: Jitter = no_jitter,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None to give up (bounce).

    The delay grows from ``first_delay`` by ``factor`` up to ``max_delay``; the last attempt is at the
    deadline at the latest, never after it.
    """
    _check(first_attempt_at, now)
    if attempts < 1:
        raise ValueError("next_attempt is for after a failed attempt")
    deadline = retry_until(first_attempt_at, policy=policy)
    if now >= deadline:
        return None
    exponent = min(attempts - 1, 64)  # beyond this the cap has long been reached
    base = min(policy.first_delay * policy.factor**exponent, policy.max_delay)
    delay = max(jitter(base), timedelta(seconds=1))
    return min(now + delay, deadline)


def is_delay_notice_due(first_attempt_at: datetime, now: datetime, *, policy: RetryPolicy, was_sent: bool) -> bool:
    """Whether to send the one "delayed" DSN now (RFC 3464 Action: delayed)."""
    _check(first_attempt_at, now)
    return not was_sent and now - first_attempt_at >= policy.delay_notice_after
