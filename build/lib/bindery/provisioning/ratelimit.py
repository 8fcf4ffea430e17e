"""Per-target rates at the providers' published quotas, and the in-process token bucket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Devices (or requests, for interop) per second by kind, from the providers' published quotas:
# AWS IoT RegisterCertificateWithoutCA 10/s (AttachPolicy 15/s, CreateThing and AttachThingPrincipal
# 100/s follow it); IoT Hub S1 100 registry operations/min per unit; interop receivers 20 requests/s.
DEFAULT_RATES = {"aws-iot": 10.0, "azure-iot-hub": 100 / 60, "aws": 20.0, "azure": 20.0, "other": 20.0}
INTEROP_KINDS = ("aws", "azure", "other")


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``burst`` (default 1: evenly spaced calls, so no
    one-second window of the provider ever sees more than the quota); ``pause`` honours a Retry-After."""

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

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


# Calls leave evenly spaced but reach the provider with jitter (threads, network); pacing a little
# under the quota keeps every one-second window at or below it.
SAFETY = 0.9


def rate_for(kind: str, override: str | None) -> float:
    """The pace for a target: its quota (published default, or the Cloud API's raised one) less a margin."""
    return (float(override) if override else DEFAULT_RATES[kind]) * SAFETY


PACED_KINDS = ("aws-iot",)


def cost(kind: str, devices: int) -> float:
    """Tokens a chunk takes up front: one request for interop kinds, one per device for IoT Hub's bulk
    call; none for aws-iot, whose connector takes one per device itself, before each call that counts."""
    if kind in PACED_KINDS:
        return 0.0
    return 1.0 if kind in INTEROP_KINDS else float(devices)
