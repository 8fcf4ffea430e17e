"""Per-target rates at the providers' published quotas, and the in-process token bucket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bindery.clouds.kinds import spec_of

# After a throttled call the pace drops to this fraction of itself (once a second at most: a burst of
# throttles is one signal), never below FLOOR of the target, and creeps back by RECOVERY of the target
# per second: additive increase, multiplicative decrease.
BACKOFF, RECOVERY, FLOOR = 0.9, 0.05, 0.25


class Aimd:
    """The pace a target is kept at right now: its target rate, less after throttling."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.target = self.current = rate
        self.clock = clock
        self.updated = clock()
        self.last_cut = float("-inf")
        self.lock = threading.Lock()

    def rate(self) -> float:
        with self.lock:
            now = self.clock()
            self.current = min(self.target, self.current + self.target * RECOVERY * (now - self.updated))
            self.updated = now
            return self.current

    def throttled(self) -> bool:
        """Cut the pace; False when it was cut within the last second already."""
        current = self.rate()
        with self.lock:
            if self.updated - self.last_cut < 1.0:
                return False
            self.current, self.last_cut = max(self.target * FLOOR, current * BACKOFF), self.updated
            return True


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``burst`` (default 1: evenly spaced calls, so no
    one-second window of the provider ever sees more than the quota); ``pause`` honours a Retry-After,
    ``throttled`` slows down for a while (AIMD)."""

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.aimd = Aimd(rate, clock)
        self.burst = burst
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self.aimd.rate()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self, tokens: float = 1.0) -> float:
        """Block until ``tokens`` are available (more than the burst are taken in burst-sized steps);
        returns the seconds waited."""
        waited = 0.0
        remaining = tokens
        if remaining <= 0:
            return waited
        while remaining > 0:
            step = min(remaining, self.burst)
            with self.lock:
                now = self.clock()
                self._refill(now)
                delay = max(self.paused_until - now, (step - self.tokens) / self.rate if self.tokens < step else 0)
                if delay <= 0:
                    self.tokens -= step
                    remaining -= step
                    continue
            time.sleep(delay)
            waited += delay
        return waited

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)
            self.tokens = 0.0

    def throttled(self) -> None:
        self.aimd.throttled()

    def current_rate(self) -> float:
        return self.rate

    def follower(self, call: str) -> None:
        """One process alone: its follow-up calls need no schedule of their own."""
        return None


# Calls leave evenly spaced but reach the provider with jitter (threads, network); pacing a little
# under the quota keeps every one-second window at or below it, and AIMD takes care of the rest.
DEFAULT_PACE = 0.97


def rate_for(kind: str, quota: str | None, pace: str | None = None) -> float:
    """The pace for a target: its quota (the kind's published default, or the Cloud API's raised one) times
    the Cloud API's ``--pace`` (default 97 %)."""
    return (float(quota) if quota else spec_of(kind).quota.rate) * (float(pace) if pace else DEFAULT_PACE)


def cost(kind: str, devices: int) -> float:
    """Tokens the run takes for a chunk before the connector has it, as the kind's quota counts them (none
    for a kind whose connector paces each call itself)."""
    return float(spec_of(kind).quota.tokens(devices))
