"""How many devices to keep in flight for a target: Little's law, from the measured time per device.

At a pace of ``rate`` devices per second, with each device taking ``seconds`` of calls, the target
holds rate * seconds devices in flight; a little more than that keeps the pacer, not the number of
threads, the limit. The time is measured as the calls run (an exponentially weighted average, the
wait for the pace left out), so the gate follows the target's latency as it changes."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HEADROOM = 1.5  # half as many again as Little's law: a pace slot must never wait for a free device
SMOOTHING = 0.1  # weight of each new measurement
MINIMUM = 4


class LittlesLaw:
    def __init__(self, rate: Callable[[], float], maximum: int, minimum: int = MINIMUM):
        self.rate, self.maximum, self.minimum = rate, maximum, min(minimum, maximum)
        self.seconds: float | None = None
        self.guessed = False
        self.lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """One device's time in its calls (without the wait for the pace)."""
        with self.lock:
            if self.seconds is None or self.guessed:
                self.seconds, self.guessed = seconds, False
            else:
                self.seconds += SMOOTHING * (seconds - self.seconds)

    def guess(self, seconds: float) -> None:
        """A first figure before any device has finished (one call's time times the calls a device
        makes), so the gate opens at the first registration rather than a whole device later; the first
        device measured replaces it."""
        with self.lock:
            if self.seconds is None:
                self.seconds, self.guessed = seconds, True

    def limit(self) -> int:
        if self.seconds is None:  # nothing measured yet: a few devices find the latency out
            return self.minimum
        wanted = math.ceil(self.rate() * self.seconds * HEADROOM) + 1
        return max(self.minimum, min(self.maximum, wanted))


class Gate:
    """At most ``limit()`` holders at once, let in first come first served (so a chunk's devices finish
    in order and the next chunk's start, rather than all chunks finishing together); the limit may
    change while callers wait."""

    def __init__(self, limit: Callable[[], int]):
        self.limit = limit
        self.active = 0
        self.peak = 0
        self.queue: deque[threading.Event] = deque()
        self.lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        turn = threading.Event()  # each waiter sleeps on its own: a release wakes one, not all
        with self.lock:
            self.queue.append(turn)
            self._admit()
        turn.wait()
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                self._admit()

    def admit(self) -> None:
        """Let more in if the limit grew (called when a new measurement may have raised it)."""
        with self.lock:
            self._admit()

    def _admit(self) -> None:
        limit = self.limit()
        while self.queue and self.active < limit:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.queue.popleft().set()


class Spacing:
    """Calls of one kind as a provider's one-second window counts them: at most ``round(rate)`` in any
    second of this process's departures, and no two closer than half an interval. Paced calls arrive
    late now and then (a busy interpreter, a collector pause); they may catch up — unlike strict
    spacing, which would lose what every late thread lost — but never beyond what a second allows."""

    def __init__(self) -> None:
        self.departures: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self, rate: float) -> float:
        """Sleep until this call may leave; returns the seconds waited. The departure is noted when the
        call really goes (after any sleep, under the lock)."""
        started = time.monotonic()
        cap, gap = max(1, round(rate)), 0.5 / rate
        while True:
            with self.lock:
                now = time.monotonic()
                while self.departures and now - self.departures[0] >= 1.0:
                    self.departures.popleft()
                delay = max(self.departures[0] + 1.0 - now if len(self.departures) >= cap else 0.0,
                            self.departures[-1] + gap - now if self.departures else 0.0)
                if delay <= 0:
                    self.departures.append(now)
                    return now - started
            time.sleep(delay)
