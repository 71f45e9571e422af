from datetime import UTC, datetime, timedelta

import pytest

from pochta.queue.retry import (
    RetryPolicy,
    is_delay_notice_due,
    next_attempt,
    proportional_jitter,
    retry_until,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def test_delays_double_up_to_the_cap() -> None:
    now = T0
    delays = []
    for attempts in range(1, 10):
        nxt = next_attempt(T0, attempts, now, policy=POLICY)
        assert nxt is not None
        delays.append(nxt - now)
        now = nxt
    minutes = [d / timedelta(minutes=1) for d in delays]
    assert minutes == [5, 10, 20, 40, 80, 160, 240, 240, 240]


def test_gives_up_after_five_days() -> None:
    deadline = T0 + timedelta(days=5)
    assert retry_until(T0, policy=POLICY) == deadline
    assert next_attempt(T0, 30, deadline - timedelta(hours=1), policy=POLICY) == deadline  # one last try
    assert next_attempt(T0, 31, deadline, policy=POLICY) is None
    assert next_attempt(T0, 31, deadline + timedelta(seconds=1), policy=POLICY) is None


def test_the_whole_schedule_from_a_fixed_clock() -> None:
    now, attempts = T0, 1
    while (nxt := next_attempt(T0, attempts, now, policy=POLICY)) is not None:
        now, attempts = nxt, attempts + 1
    assert now == T0 + timedelta(days=5)
    assert attempts == 36  # at 0, 5, 15, 35, 75, 155, 315 min, then every 4 h (28), then at the deadline


def test_jitter_is_passed_in() -> None:
    low = proportional_jitter(0.1, lambda: 0.0)
    high = proportional_jitter(0.1, lambda: 0.999999)
    assert next_attempt(T0, 1, T0, policy=POLICY, jitter=low) == T0 + timedelta(minutes=4.5)
    assert next_attempt(T0, 1, T0, policy=POLICY, jitter=high) - T0 > timedelta(minutes=5.49)  # type: ignore[operator]
    assert next_attempt(T0, 1, T0, policy=POLICY, jitter=lambda d: -d) == T0 + timedelta(seconds=1)


def test_custom_policy() -> None:
    policy = RetryPolicy(first_delay=timedelta(seconds=1), factor=3, max_delay=timedelta(seconds=5))
    assert next_attempt(T0, 2, T0, policy=policy) == T0 + timedelta(seconds=3)
    assert next_attempt(T0, 3, T0, policy=policy) == T0 + timedelta(seconds=5)
    with pytest.raises(ValueError):
        RetryPolicy(first_delay=timedelta(0))


def test_delay_notice_once_after_four_hours() -> None:
    assert not is_delay_notice_due(T0, T0 + timedelta(hours=3, minutes=59), policy=POLICY, was_sent=False)
    assert is_delay_notice_due(T0, T0 + timedelta(hours=4), policy=POLICY, was_sent=False)
    assert not is_delay_notice_due(T0, T0 + timedelta(hours=5), policy=POLICY, was_sent=True)


def test_naive_datetimes_and_zero_attempts_are_our_mistake() -> None:
    with pytest.raises(ValueError):
        next_attempt(datetime(2024, 5, 1), 1, T0, policy=POLICY)
    with pytest.raises(ValueError):
        next_attempt(T0, 0, T0, policy=POLICY)
