"""One quota per target for every process and host: where the pace of calls is kept.

``database`` (the default) keeps a target's next free call slot in Bindery's database: a process
reserves a block of slots with one ``UPDATE … RETURNING`` under the row's lock and hands them to its
threads at their exact times, so calls from all workers together stay evenly spaced at the pace.
``prefect`` asks a Prefect global concurrency limit with slot decay instead (measured against the
database in ``bench/provision --workers``); ``process`` is the per-process token bucket, for one
process alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from sqlalchemy import Engine, text

from bindery.clouds.base import Pacer
from bindery.db import get_engine, through_outage
from bindery.provisioning.ratelimit import Aimd, TokenBucket
from bindery.settings import Settings, get_settings

# A reservation covers this much of the schedule: few enough round trips, fine enough interleaving.
BLOCK_SECONDS = 0.2
# A reserved slot older than this (seconds) is dropped, not used late: using it would burst (at 97 % of
# a quota, a slot used 30 ms late can already make a one-second window count 100 %).
STALE_AFTER = 0.02
# Another process's slots seen on a target's schedule this recently: the target is shared.
SHARED_SECONDS = 10.0


class DatabaseClock:
    """The database's clock in this process's monotonic time, as NTP reads a server's: each statement's
    ``now`` is taken at some moment between sending and receiving, so it is placed at the midpoint, and
    the round trip that was shortest among the recent ones gives the mapping (its error is at most half
    that round trip). Adding the database's "slot in n seconds" to the time the answer arrived instead
    would shift every slot by how long the answer took — tens of milliseconds on a busy host, enough
    for three processes' slots to overlap."""

    KEPT = 32  # recent samples: the shortest round trip among them wins; old ones age out (clock drift)

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=self.KEPT)  # (round trip, offset)
        self.offset = 0.0

    def observe(self, database_now: float, sent: float, received: float) -> None:
        self.samples.append((received - sent, database_now - (sent + received) / 2))
        self.offset = min(self.samples)[1]

    def local(self, database_time: float) -> float:
        return database_time - self.offset


class DatabasePace:
    """Slots of one target, reserved from its ``quota_pace`` row in blocks and spent in time order."""

    def __init__(self, engine: Engine, api_id: int, rate: float, block_seconds: float = BLOCK_SECONDS,
                 call: str = ""):
        self.engine = engine
        self.api_id, self.call = api_id, call
        self.aimd = Aimd(rate)
        self.block = max(1, int(rate * block_seconds))
        self.slots: deque[float] = deque()
        self.lock = threading.Lock()
        self.postgres = engine.dialect.name == "postgresql"
        self.clock = DatabaseClock()
        self.reserved_until = 0.0  # the end of this process's last block, in the database's time
        self.others_seen = float("-inf")  # when a block last started after another process's slots
        self.followers: dict[str, DatabasePace] = {}
        self.followers_lock = threading.Lock()

    def _update(self, assignment: str, returning: str, values: dict[str, float]) -> tuple[float, float]:
        """``UPDATE quota_pace SET <assignment> … RETURNING <returning>, {now}`` on the target's row (made on
        first use), where ``{now}`` is the database's clock when the statement runs: on PostgreSQL so hosts
        need not agree on the time; on SQLite (one host) because the statement may have waited for the
        file's lock, and a time taken before that wait would put the slots in the past. Every answer also
        tells the clock mapping (:class:`DatabaseClock`) where the database's clock stands."""
        if self.postgres:
            sql = ("WITH t AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) UPDATE quota_pace SET "
                   f"{assignment.format(greatest='GREATEST', now='t.now')} FROM t WHERE cloud_api_id = :id "
                   "AND api_call = :call "
                   f"RETURNING {returning.format(now='t.now')}, t.now")
            params = {**values, "id": self.api_id, "call": self.call}
        else:
            now = "((julianday('now') - 2440587.5) * 86400.0)"
            sql = (f"UPDATE quota_pace SET {assignment.format(greatest='max', now=now)} WHERE cloud_api_id = :id "
                   "AND api_call = :call "
                   f"RETURNING {returning.format(now=now)}, {now}")
            params = {**values, "id": self.api_id, "call": self.call}
        statement = text(sql)

        def once() -> tuple[float, float]:
            with self.engine.begin() as connection:
                sent = time.monotonic()
                returned = connection.execute(statement, params).one_or_none()
                if returned is None:
                    connection.execute(text("INSERT INTO quota_pace (cloud_api_id, api_call, next_at, paused_until) "
                                            "VALUES (:id, :call, 0, 0) ON CONFLICT DO NOTHING"),
                                       {"id": self.api_id, "call": self.call})
                    sent = time.monotonic()
                    returned = connection.execute(statement, params).one()
                received = time.monotonic()
            self.clock.observe(float(returned[1]), sent, received)
            return float(returned[0]), float(returned[1])

        return through_outage(once, url=self.engine.url.render_as_string(hide_password=True),
                              seconds=get_settings().database_retry_seconds)

    def _reserve(self, count: int) -> list[float]:
        """``count`` consecutive slots as local monotonic times, spaced at the pace of the moment."""
        rate = self.aimd.rate()
        span = count / rate
        ends_at, database_now = self._update("next_at = {greatest}(next_at, paused_until, {now}) + :span",
                                             "next_at", {"span": span})
        if ends_at - span > max(self.reserved_until, database_now) + 0.001:
            self.others_seen = time.monotonic()  # slots nobody here reserved lie between ours and now
        self.reserved_until = ends_at
        start = self.clock.local(ends_at) - span
        return [start + i / rate for i in range(count)]

    def acquire(self, tokens: float = 1.0) -> float:
        """Wait for the next slot. A slot is only good until STALE_AFTER past its time, checked when the
        caller wakes: a thread that woke late takes the next slot instead of going out together with it."""
        count = math.ceil(tokens)
        if count <= 0:
            return 0.0
        started = time.monotonic()
        while True:
            with self.lock:
                if count > 1:
                    at = self._reserve(count)[0]
                else:
                    now = time.monotonic()
                    while self.slots and self.slots[0] < now - STALE_AFTER:
                        self.slots.popleft()
                    if not self.slots:
                        self.slots.extend(self._reserve(self.block))
                    at = self.slots.popleft()
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if count > 1 or time.monotonic() - at <= STALE_AFTER:
                return time.monotonic() - started

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.slots.clear()
            self._update("paused_until = {greatest}(paused_until, {now} + :s)", "paused_until", {"s": seconds})

    def current_rate(self) -> float:
        return self.aimd.rate()

    def follower(self, call: str) -> Pacer | None:
        """Another call's schedule in the same table, a slot per call (no block: its calls come as the
        registrations' answers do, and a slot reserved but not used would be lost to every process),
        used while another process was seen on this schedule in the last SHARED_SECONDS. Alone, a
        process's follow-up calls follow its own registrations; shared, one process held up (a busy
        host) would send its late follow-ups together with the others' on-time ones, above the quota."""
        if time.monotonic() - self.others_seen > SHARED_SECONDS:
            return None
        found = self.followers.get(call)
        if found is None:  # not under self.lock: that one is held across this schedule's database round trips
            with self.followers_lock:
                found = self.followers.setdefault(call, DatabasePace(self.engine, self.api_id, self.aimd.target,
                                                                     block_seconds=0.0, call=call))
        return found

    def throttled(self) -> None:
        """This process slows down: the slots it reserves next are wider apart (those it holds are used:
        dropping them would leave a gap in the shared schedule). Other processes slow down when their
        own calls are throttled."""
        self.aimd.throttled()


class PrefectPace:
    """A Prefect global concurrency limit of one slot decaying at the pace (``rate_limit``): every
    acquire is a call to the Prefect API. Retry-After pauses only this process."""

    def __init__(self, api_id: int, rate: float):
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
        from prefect.exceptions import ObjectAlreadyExists

        self.name = f"bindery-quota-{api_id}"
        self.local = TokenBucket(rate)
        with get_client(sync_client=True) as client:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=self.name, limit=1, slot_decay_per_second=rate))
            except ObjectAlreadyExists:
                client.update_global_concurrency_limit(self.name, GlobalConcurrencyLimitUpdate(
                    limit=1, slot_decay_per_second=rate))

    def acquire(self, tokens: float = 1.0) -> float:
        from prefect.concurrency.sync import rate_limit

        count = math.ceil(tokens)
        if count <= 0:
            return 0.0
        started = time.monotonic()
        paused = self.local.paused_until - self.local.clock()
        if paused > 0:
            time.sleep(paused)
        for _ in range(count):
            rate_limit(self.name, occupy=1, strict=True)
        return time.monotonic() - started

    def pause(self, seconds: float) -> None:
        with self.local.lock:
            self.local.paused_until = max(self.local.paused_until, self.local.clock() + seconds)

    def current_rate(self) -> float:
        return self.local.rate

    def follower(self, call: str) -> Pacer | None:
        return None

    def throttled(self) -> None:
        """The limit's decay is fixed on the server; a throttled call pauses this process briefly."""
        self.pause(1.0 / max(self.local.aimd.target, 1.0))


_pacers: dict[tuple[str, str, int, float], Pacer] = {}
_registry_lock = threading.Lock()


def pacer_for(settings: Settings, api_id: int, rate: float) -> Pacer:
    """The pacer of a target in this process (one per target, shared by its chunks' threads)."""
    key = (settings.quota_sharing, settings.resolved_database_url, api_id, rate)
    with _registry_lock:
        if key not in _pacers:
            if settings.quota_sharing == "database":
                _pacers[key] = DatabasePace(get_engine(settings), api_id, rate)
            elif settings.quota_sharing == "prefect":
                _pacers[key] = PrefectPace(api_id, rate)
            else:
                _pacers[key] = TokenBucket(rate)
        return _pacers[key]
