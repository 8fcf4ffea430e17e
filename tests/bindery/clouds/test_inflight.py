"""Little's law sizes the devices in flight; the gate lets them in first come first served; spacing
keeps any one second of departures within the rate."""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest

from bindery.clouds.inflight import HEADROOM, MINIMUM, Gate, LittlesLaw, Spacing


def test_littles_law_follows_the_measured_time() -> None:
    law = LittlesLaw(lambda: 100.0, maximum=128)
    assert law.limit() == MINIMUM, "nothing measured yet"
    law.observe(0.2)
    assert law.limit() == int(100 * 0.2 * HEADROOM) + 1
    for _ in range(100):
        law.observe(0.6)
    assert law.limit() == pytest.approx(100 * 0.6 * HEADROOM + 1, abs=1)
    law.observe(100.0)
    assert law.limit() == 128, "never above the maximum"


def test_a_guess_opens_the_gate_until_the_first_device_is_measured() -> None:
    law = LittlesLaw(lambda: 100.0, maximum=128)
    law.guess(0.4)
    assert law.limit() == math.ceil(100 * 0.4 * HEADROOM) + 1
    law.guess(5.0)
    assert law.limit() == math.ceil(100 * 0.4 * HEADROOM) + 1, "only the first guess counts"
    law.observe(0.2)
    assert law.limit() == math.ceil(100 * 0.2 * HEADROOM) + 1, "the first measurement replaces the guess"
    law.observe(0.4)
    assert 0.2 < law.seconds < 0.4 if law.seconds else False, "later ones are averaged"
    law.guess(3.0)
    assert law.seconds is not None and law.seconds < 0.4, "a guess never overrides a measurement"


def test_gate_holds_the_limit_and_keeps_the_order() -> None:
    limit = [2]
    gate = Gate(lambda: limit[0])
    order: list[int] = []
    release = threading.Event()

    def hold(i: int) -> None:
        with gate.held():
            order.append(i)
            release.wait()

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=hold, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while gate.active + len(gate.queue) < i + 1:  # arrived: the next one starts only now
            assert time.monotonic() < deadline
            time.sleep(0.005)
    time.sleep(0.1)
    assert order == [0, 1] and gate.active == 2
    limit[0] = 4  # measured latency grew: more may go
    gate.admit()
    time.sleep(0.2)
    assert sorted(order) == [0, 1, 2, 3], "the first in line go first"
    release.set()
    for thread in threads:
        thread.join()
    assert sorted(order) == list(range(6)) and gate.peak == 4


def test_spacing_keeps_every_second_within_the_rate() -> None:
    spacing = Spacing()
    departures = []

    def go() -> None:
        for _ in range(15):
            spacing.wait(20.0)
            departures.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    departures.sort()
    # stamped a moment after each departure was noted, so one more may fall into a window here
    assert max(sum(1 for t in departures if start <= t < start + 1.0) for start in departures) <= 21
    assert min(b - a for a, b in itertools.pairwise(departures)) >= 0.5 / 20 - 0.002
    assert 2.0 <= departures[-1] - departures[0] <= 3.5, "60 departures at 20 a second take two seconds and more"
