"""AWS IoT Core, directly through boto3 (kind aws-iot).

Per device: RegisterCertificateWithoutCA (ACTIVE; already registered is success, the ARN taken from
the exception), CreateThing (prefix + device_id made valid), AttachPolicy, AttachThingPrincipal and
optionally AddThingToThingGroup. DescribeEndpoint (iot:Data-ATS) once per connector. botocore makes
one attempt per call: a throttled call is tried again in place (and slows the target's pace down),
anything else is Bindery's retry policy's to decide, keyed off Transient/Permanent.

Devices run on the target's pipeline, one per target and process (``bindery/clouds/aws_pipeline.py``):
worker threads, a boto3 client per device in flight (kept, with its connection), behind a gate that
keeps as many devices in flight as Little's law asks for at the pace (``bindery/clouds/inflight.py``).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import botocore.exceptions as boto_errors

from bindery.clouds.aws_errors import map_error, throttled
from bindery.clouds.aws_pipeline import Pipeline, pipeline_for, release_pipeline
from bindery.clouds.base import (
    Confirmed,
    ConnectorError,
    DeviceCert,
    DeviceKey,
    DeviceResult,
    Holding,
    Outcome,
    Pacer,
    Permanent,
    ProvisionedDevice,
    failed,
)

THING_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
def thing_name(prefix: str, device_id: str) -> str:
    """prefix + device_id when valid for AWS; otherwise invalid characters replaced and a short hash
    of the original appended, so two device ids never share a thing."""
    name = f"{prefix}{device_id}"
    if THING_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(device_id.encode()).hexdigest()[:8]
    clean = re.sub(r"[^a-zA-Z0-9:_-]", "_", name)[: 128 - 9]
    return f"{clean}-{digest}"


THROTTLED_ATTEMPTS = 5  # a call throttled this often fails the device (transient: the chunk retries it)
CONFIRM_EVERY = 10  # devices recorded per transaction while a chunk is in flight


class AwsIotConnector:
    """A chunk's devices go to the target's pipeline (each device's calls in order, devices side by side
    up to the gate); ``pacer`` is taken before every RegisterCertificateWithoutCA, the call whose quota
    binds, so the rate limit holds per call rather than per chunk."""

    def __init__(self, options: dict[str, str], *, timeout: float, parallel: int = 128, pacer: Pacer | None = None):
        self.options = options
        self.timeout = timeout
        self.parallel = parallel
        self.pacer = pacer
        self._pipeline: Pipeline | None = None
        self._endpoint: str | None = None
        self.request_sizes: list[int] = []

    def pace(self, pacer: Pacer) -> None:
        """Taken before every RegisterCertificateWithoutCA (the call whose quota binds)."""
        self.pacer = pacer

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = pipeline_for(self.options, self.timeout, self.parallel)
        return self._pipeline

    @property
    def client(self) -> Any:
        """The calling thread's client of the target's pipeline."""
        return self.pipeline.client()

    def _call(self, name: str, **kwargs: Any) -> Any:
        """One call; throttling is tried again in place after a short jittered wait, and slows the pace.
        The per-device calls leave evenly spaced at the pace, each kind on its own."""
        method = getattr(self.client, re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
        for attempt in range(THROTTLED_ATTEMPTS):
            try:
                return method(**kwargs)
            except Exception as exc:
                if not throttled(exc) or attempt == THROTTLED_ATTEMPTS - 1:
                    raise map_error(exc, name) from None
                self._throttled(attempt)
        raise AssertionError("unreachable")

    def _throttled(self, attempt: int) -> None:
        if self.pacer is not None:
            self.pacer.throttled()
        time.sleep(random.uniform(0.05, 0.1 * 2 ** attempt))

    def endpoint(self) -> str:
        if self._endpoint is None:
            started = time.monotonic()
            answer = self._call("DescribeEndpoint", endpointType="iot:Data-ATS")
            self.pipeline.law.guess((time.monotonic() - started) * self.calls_per_device)
            self.pipeline.warm(self.pipeline.law.limit())
            try:
                self._endpoint = str(answer["endpointAddress"])
            except (KeyError, TypeError) as exc:
                raise map_error(exc, "DescribeEndpoint") from None
        return self._endpoint

    def close(self) -> None:
        """Gives the pipeline back; its threads and clients stay for the target's next chunk."""
        if self._pipeline is not None:
            release_pipeline(self._pipeline)
            self._pipeline = None

    def check(self) -> None:
        self.endpoint()
        self._call("GetPolicy", policyName=self.options["policy"])

    def provision(self, devices: Sequence[DeviceCert], confirmed: Confirmed | None = None) -> list[DeviceResult]:
        """Devices in the pipeline's threads; their results go to ``confirmed`` in order, every
        CONFIRM_EVERY devices (one transaction each, not one per device)."""
        pipeline = self.pipeline
        if self.pacer is not None:
            pipeline.pacer, pipeline.rate = self.pacer, self.pacer.current_rate()
        endpoint = self.endpoint()
        jobs = [pipeline.pool.submit(self._gated, device, endpoint) for device in devices]
        results: list[DeviceResult] = []
        for job in jobs:
            results.append(job.result())
            if confirmed is not None and len(results) % CONFIRM_EVERY == 0:
                confirmed(results[-CONFIRM_EVERY:])
        if confirmed is not None and len(results) % CONFIRM_EVERY:
            confirmed(results[-(len(results) % CONFIRM_EVERY):])
        return results

    @property
    def calls_per_device(self) -> int:
        """RegisterCertificateWithoutCA, CreateThing, AttachPolicy, AttachThingPrincipal, and
        AddThingToThingGroup when the API names a group."""
        return 5 if self.options.get("thing_group") else 4

    def _gated(self, device: DeviceCert, endpoint: str) -> DeviceResult:
        """One device inside the gate; its time in calls (the pace's wait left out) feeds Little's law."""
        pipeline = self.pipeline
        with pipeline.gate.held():
            pipeline.local.waited = 0.0
            started = time.monotonic()
            with pipeline.holding_client():
                result = self._one(device, endpoint)
            if result.outcome is not Outcome.FAILED:
                pipeline.law.observe(time.monotonic() - started - pipeline.local.waited)
                pipeline.gate.admit()
        return result

    def _register(self, device: DeviceCert) -> tuple[str, bool]:
        """(certificate ARN, newly registered). The certificate ID is the SHA-256 of the DER, so an
        already registered certificate is found by its fingerprint when the exception lacks the ARN."""
        known_arn = None
        for attempt in range(THROTTLED_ATTEMPTS):  # each attempt waits for its slot (in _before_send)
            try:
                answer = self.client.register_certificate_without_ca(certificatePem=device.certificate_pem,
                                                                     status="ACTIVE")
                return str(answer["certificateArn"]), True
            except boto_errors.ClientError as exc:
                if throttled(exc) and attempt < THROTTLED_ATTEMPTS - 1:
                    if self.pacer is not None:
                        self.pacer.throttled()  # the next slot is further away: no extra sleep
                    else:
                        self._throttled(attempt)
                    continue
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise map_error(exc, "RegisterCertificateWithoutCA") from None
                known_arn = exc.response.get("resourceArn")
                break
            except Exception as exc:
                raise map_error(exc, "RegisterCertificateWithoutCA") from None
        if known_arn:
            return str(known_arn), False
        described = self._call("DescribeCertificate", certificateId=device.fingerprint_sha256)
        try:
            return str(described["certificateDescription"]["certificateArn"]), False
        except (KeyError, TypeError) as exc:
            raise map_error(exc, "DescribeCertificate") from None

    def _one(self, device: DeviceCert, endpoint: str) -> DeviceResult:
        try:
            arn, new = self._register(device)
            name = thing_name(self.options.get("thing_prefix", ""), device.device_id)
            thing: dict[str, Any] = {"thingName": name}
            if self.options.get("thing_type"):
                thing["thingTypeName"] = self.options["thing_type"]
            try:
                self._call("CreateThing", **thing)
            except Permanent as exc:
                if "ResourceAlreadyExistsException" not in str(exc):
                    raise
            self._call("AttachPolicy", policyName=self.options["policy"], target=arn)
            self._call("AttachThingPrincipal", thingName=name, principal=arn)
            if self.options.get("thing_group"):
                self._call("AddThingToThingGroup", thingGroupName=self.options["thing_group"], thingName=name)
        except ConnectorError as exc:
            return failed(device.device_id, exc)
        return DeviceResult(device.device_id, Outcome.PROVISIONED if new else Outcome.ALREADY_PRESENT,
                            external_ref=arn, endpoint=endpoint)

    def deprovision(self, devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
        """Detach principal and policy, set the certificate INACTIVE, delete certificate and thing.
        Anything already gone counts as removed."""
        return [self._remove(device) for device in devices]

    def _ignore_missing(self, name: str, **kwargs: Any) -> None:
        try:
            self._call(name, **kwargs)
        except Permanent as exc:
            if "ResourceNotFoundException" not in str(exc):
                raise

    def _remove(self, device: ProvisionedDevice) -> DeviceResult:
        name = thing_name(self.options.get("thing_prefix", ""), device.device_id)
        arn = device.external_ref or ""
        try:
            if arn:
                self._ignore_missing("DetachThingPrincipal", thingName=name, principal=arn)
                self._ignore_missing("DetachPolicy", policyName=self.options["policy"], target=arn)
            self._ignore_missing("UpdateCertificate", certificateId=device.fingerprint_sha256, newStatus="INACTIVE")
            self._ignore_missing("DeleteCertificate", certificateId=device.fingerprint_sha256)
            self._ignore_missing("DeleteThing", thingName=name)
        except ConnectorError as exc:
            return failed(device.device_id, exc)
        return DeviceResult(device.device_id, Outcome.PROVISIONED, external_ref=arn)

    def _pages(self, name: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The items of a paginated listing, one page in memory at a time."""
        try:
            paginator = self.client.get_paginator(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
            for page in paginator.paginate(**kwargs):
                yield from page.get(key, [])
        except Exception as exc:
            raise map_error(exc, name) from None

    def inventory(self, devices: Sequence[DeviceKey]) -> dict[str, Holding] | None:
        """Certificates by ID (the SHA-256 of the DER) and status from ListCertificates, things from
        ListThings filtered by the prefix: two paginated listings, whatever the number of devices; only
        what concerns these devices is kept (the account may hold far more)."""
        by_fingerprint = {device.fingerprint_sha256: device for device in devices}
        certificates: dict[str, tuple[bool, str | None]] = {}
        for listed in self._pages("ListCertificates", "certificates", pageSize=250):
            if listed["certificateId"] in by_fingerprint:
                certificates[listed["certificateId"]] = (listed.get("status") == "ACTIVE", listed.get("certificateArn"))
        prefix = self.options.get("thing_prefix", "")
        wanted_things = {thing_name(prefix, device.device_id) for device in devices}
        things = {t["thingName"] for t in self._pages("ListThings", "things", maxResults=250)
                  if t["thingName"] in wanted_things}
        held: dict[str, Holding] = {}
        for device in devices:
            found = certificates.get(device.fingerprint_sha256)
            if found is None or thing_name(prefix, device.device_id) not in things:
                continue
            held[device.device_id] = Holding(device.device_id, device.fingerprint_sha256, *found)
        return held
