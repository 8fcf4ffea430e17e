"""One aws-iot target's pipeline in a process: worker threads, the gate that Little's law sizes, a boto3
client per device in flight, and the pacing done right before each request leaves (botocore's
before-send hook). The connector (``bindery/clouds/aws_iot.py``) sends a chunk's devices through it."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from bindery.clouds.aws_errors import map_error
from bindery.clouds.base import Pacer
from bindery.clouds.inflight import Gate, LittlesLaw, Spacing

REGISTER = "RegisterCertificateWithoutCA"
PER_DEVICE_CALLS = ("RegisterCertificateWithoutCA", "CreateThing", "AttachPolicy", "AttachThingPrincipal",
                    "AddThingToThingGroup")
PIPELINE_HOURS = 0.75  # assumed-role credentials last an hour: pipelines are rebuilt before
# KEPT_FROM_THE_COLLECTOR: a boto3 client is some 3,300 objects the cyclic collector tracks, all living
# as long as the pipeline. Made by the hundred at the start of a run, they drove Python's collector into
# one full collection after another (measured at 100/s and 150 ms: six of 100-240 ms in the first two
# seconds, a third of those seconds' registrations lost). Each new client is frozen out of collections
# (gc.freeze); a pipeline that is dropped unfreezes them, so its clients can be collected.


class Pipeline:
    """One target's worker threads in this process and the gate. A device holds a boto3 client of its own
    while it is in flight (taken from the pipeline's idle clients, made when none is idle), so there are
    as many clients as devices ever were in flight, each used by one thread at a time, each keeping its
    connection alive; threads outside the pipeline (the endpoint, removal, listings) keep one each."""

    def __init__(self, options: dict[str, str], timeout: float, maximum: int):
        self.options, self.timeout = options, timeout
        self.config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=timeout,
                             read_timeout=timeout, max_pool_connections=2)
        self.session: boto3.session.Session | None = None
        self.local = threading.local()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=maximum, thread_name_prefix="bindery-aws-iot")
        self.rate = 1.0
        self.law = LittlesLaw(lambda: self.rate, maximum)
        self.gate = Gate(self.law.limit)
        self.spacing: dict[str, Spacing] = {name: Spacing() for name in PER_DEVICE_CALLS}
        self.pacer: Pacer | None = None
        self.idle: list[Any] = []
        self.made = 0  # clients made for devices in flight (idle or held)
        self.created = time.monotonic()
        self.users = 0


    def client(self) -> Any:
        """The client this thread holds now (a device in flight), else this thread's own."""
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self._new_client()
        return client

    @contextmanager
    def holding_client(self) -> Iterator[None]:
        """An idle client for this thread while a device is in flight; its making is counted as waiting."""
        with self.lock:
            client = self.idle.pop() if self.idle else None
        if client is None:
            started = time.monotonic()
            with self.lock:
                self.made += 1
            client = self._new_client()
            self.local.waited = getattr(self.local, "waited", 0.0) + time.monotonic() - started
        self.local.client = client
        try:
            yield
        finally:
            self.local.client = None
            with self.lock:
                self.idle.append(client)

    def warm(self, count: int) -> None:
        """Make the clients for the devices the gate lets in now, before the first of them is paced:
        made as the devices arrive, their CPU held back requests that were already paced and sent them
        together (the first seconds of a run at 100/s showed registrations above the quota)."""
        while True:
            with self.lock:
                if self.made >= count:
                    return
                self.made += 1
            client = self._new_client()
            with self.lock:
                self.idle.append(client)

    def _new_client(self) -> Any:
        with self.lock:  # boto3 sessions are not thread-safe: clients are made one at a time
            if self.session is None:
                session = boto3.session.Session(region_name=self.options["region"])
                self.session = self._assumed(session) if self.options.get("role_arn") else session
            client = self.session.client("iot", endpoint_url=self.options.get("endpoint_url"), config=self.config)
        client.meta.events.register("before-send.iot", self._before_send)
        gc.freeze()  # see KEPT_FROM_THE_COLLECTOR
        return client

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        """Pacing happens here, after botocore built and signed the request and right before it is sent,
        so the time a busy interpreter takes to build it cannot bunch paced calls on the wire: the pace's
        slot for RegisterCertificateWithoutCA (the call whose quota binds), then even spacing of every
        per-device call. The wait for the pace is noted for Little's law, which leaves it out (the later
        calls' spacing is part of a device's time in flight). While other processes share the target,
        the follow-up calls take slots of their own shared schedules instead (DatabasePace.follower)."""
        operation = event_name.rsplit(".", 1)[-1]
        if self.pacer is None or operation not in self.spacing:
            return None
        if operation == REGISTER:  # the wait for the pace is not the device's time in calls
            waited = self.pacer.acquire() + self.spacing[operation].wait(self.rate)
            self.local.waited = getattr(self.local, "waited", 0.0) + waited
        else:
            follower = self.pacer.follower(operation)
            if follower is not None:
                follower.acquire()
            else:
                self.spacing[operation].wait(self.rate)
        return None

    def _assumed(self, session: boto3.session.Session) -> boto3.session.Session:
        sts = session.client("sts", endpoint_url=self.options.get("endpoint_url"), config=self.config)
        try:
            creds = sts.assume_role(RoleArn=self.options["role_arn"], RoleSessionName="bindery")["Credentials"]
        except Exception as exc:
            raise map_error(exc, "AssumeRole") from None
        return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"], region_name=self.options["region"])

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False)
        gc.unfreeze()

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.created > PIPELINE_HOURS * 3600


_pipelines: dict[str, Pipeline] = {}
_pipelines_lock = threading.Lock()
KEPT_IDLE = 4  # pipelines of targets no connector uses any more are shut down beyond this many


def pipeline_for(options: dict[str, str], timeout: float, maximum: int) -> Pipeline:
    key = json.dumps([options, timeout, maximum], sort_keys=True)
    with _pipelines_lock:
        found = _pipelines.get(key)
        if found is None or found.stale:
            if found is not None and found.users == 0:
                found.shutdown()  # one still in use is shut down by its last user's release
            found = _pipelines[key] = Pipeline(options, timeout, maximum)
        found.users += 1
        idle = [k for k, p in _pipelines.items() if p.users == 0 and k != key]
        for old in idle[:max(0, len(idle) - KEPT_IDLE)]:
            _pipelines.pop(old).shutdown()
        return found


def release_pipeline(pipeline: Pipeline) -> None:
    with _pipelines_lock:
        pipeline.users -= 1
        if pipeline.users == 0 and pipeline not in _pipelines.values():
            pipeline.shutdown()
