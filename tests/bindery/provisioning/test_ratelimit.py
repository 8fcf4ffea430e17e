"""The token bucket paces calls evenly and honours Retry-After pauses (a fake clock, no sleeping on time)."""

from __future__ import annotations

import time

import pytest

from bindery.provisioning import ratelimit
from bindery.provisioning.ratelimit import TokenBucket, cost, rate_for


def test_evenly_spaced_calls_never_exceed_the_rate_in_any_second() -> None:
    bucket = TokenBucket(rate=20.0)
    stamps = []
    for _ in range(30):
        bucket.acquire()
        stamps.append(time.monotonic())
    assert stamps[-1] - stamps[0] == pytest.approx(29 / 20, rel=0.15)
    for start in stamps:
        assert sum(1 for t in stamps if start <= t < start + 1.0) <= 20


def test_pause_holds_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = TokenBucket(rate=1000.0)
    bucket.pause(0.3)
    started = time.monotonic()
    bucket.acquire()
    assert time.monotonic() - started >= 0.29


def test_rates_from_published_quotas_with_margin() -> None:
    assert rate_for("aws-iot", None) == pytest.approx(10 * ratelimit.DEFAULT_PACE)
    assert rate_for("azure-iot-hub", None) == pytest.approx(100 / 60 * ratelimit.DEFAULT_PACE)
    assert rate_for("other", "100") == pytest.approx(100 * ratelimit.DEFAULT_PACE)
    assert (cost("other", 50), cost("azure-iot-hub", 50), cost("aws-iot", 50)) == (1.0, 50.0, 0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_aimd_cuts_once_a_second_and_creeps_back() -> None:
    clock = Clock()
    aimd = ratelimit.Aimd(100.0, clock)
    assert aimd.throttled() and aimd.rate() == pytest.approx(100 * ratelimit.BACKOFF)
    assert not aimd.throttled(), "a burst of throttles within a second is one signal"
    clock.now += 1.0
    assert aimd.rate() == pytest.approx(100 * ratelimit.BACKOFF + 100 * ratelimit.RECOVERY)
    clock.now += 10.0
    assert aimd.rate() == pytest.approx(100.0), "back at the target, never above it"
    for _ in range(60):
        clock.now += 1.0
        aimd.throttled()
    assert aimd.rate() >= 100 * ratelimit.FLOOR


def test_a_throttled_bucket_slows_down() -> None:
    bucket = TokenBucket(rate=50.0)
    bucket.throttled()
    assert bucket.current_rate() < 50.0
    assert rate_for("aws-iot", "100", "0.5") == pytest.approx(50.0)
