"""How many devices to keep in flight for a target: Little's law, from the measured time per device.

At a pace of ``rate`` devices per second, with each device taking ``seconds`` of calls, the target
holds rate * seconds devices in flight; a little more than that keeps the pacer, not the number of
threads, the limit. The time is measured as the calls run (an exponentially weighted average, the
wait for the pace left out), so the gate follows the target's latency as it changes."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HEADROOM = 1.25  # a quarter more than Little's law, so a pace slot never waits for a free device
SMOOTHING = 0.1  # weight of each new measurement
MINIMUM = 4


class LittlesLaw:
    def __init__(self, rate: Callable[[], float], maximum: int, minimum: int = MINIMUM):
        self.rate, self.maximum, self.minimum = rate, maximum, min(minimum, maximum)
        self.seconds: float | None = None
        self.lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """One device's time in its calls (without the wait for the pace)."""
        with self.lock:
            self.seconds = seconds if self.seconds is None else self.seconds + SMOOTHING * (seconds - self.seconds)

    def limit(self) -> int:
        if self.seconds is None:  # nothing measured yet: a few devices find the latency out
            return self.minimum
        wanted = math.ceil(self.rate() * self.seconds * HEADROOM) + 1
        return max(self.minimum, min(self.maximum, wanted))


class Gate:
    """At most ``limit()`` holders at once; the limit may change while callers wait."""

    def __init__(self, limit: Callable[[], int]):
        self.limit = limit
        self.active = 0
        self.peak = 0
        self.condition = threading.Condition()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.condition:
            while self.active >= self.limit():
                self.condition.wait(0.05)  # the limit grows as latency is measured: look again soon
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self.condition:
                self.active -= 1
                self.condition.notify()
