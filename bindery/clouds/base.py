"""The one small Protocol every connector implements, and the error tree retries key off.

Each connector maps its library's errors here, at its boundary: ``Transient`` (timeouts, connection
errors, 429, 5xx, throttling: worth retrying, maybe after ``retry_after`` seconds) or ``Permanent``
(4xx, invalid certificate, conflict: retrying cannot help).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ConnectorError(Exception):
    """A failure talking to a Product Cloud; ``str(error)`` never contains a secret."""

    transient = False

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ConnectorError):
    transient = True


class Permanent(ConnectorError):
    transient = False


class Outcome(StrEnum):
    PROVISIONED = "provisioned"
    ALREADY_PRESENT = "already present"
    FAILED = "failed"


@dataclass(frozen=True)
class DeviceKey:
    """What an inventory needs of a device: its id, the SHA-256 of its certificate's DER and its subject CN
    (a kind whose target keys devices by CN, as DPS's registration ids are, finds them by it); no PEM,
    so a 100,000-device reconcile does not hold every certificate."""

    device_id: str
    fingerprint_sha256: str
    subject_cn: str | None = None


@dataclass(frozen=True)
class DeviceCert:
    """What a connector needs of a device: its id, certificate PEM and SHA-256 of the DER."""

    device_id: str
    certificate_pem: str
    fingerprint_sha256: str


@dataclass(frozen=True)
class ProvisionedDevice:
    """What a connector needs to remove a device: the certificate and the reference it recorded."""

    device_id: str
    fingerprint_sha256: str
    external_ref: str | None


@dataclass(frozen=True)
class Holding:
    """What a target holds for one device: its certificate fingerprint, whether it is enabled, its reference."""

    device_id: str
    fingerprint_sha256: str | None
    enabled: bool
    external_ref: str | None = None


@dataclass(frozen=True)
class DeviceResult:
    device_id: str
    outcome: Outcome
    external_ref: str | None = None
    endpoint: str | None = None
    topic: str | None = None
    policy_applied: bool | None = None  # the receiver's word on the device's IoT policy (None: not said)
    error: str | None = None
    error_class: str | None = None  # "transient" or "permanent"
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED


def failed(device_id: str, error: ConnectorError) -> DeviceResult:
    return DeviceResult(device_id, Outcome.FAILED, error=str(error),
                        error_class="transient" if error.transient else "permanent", retry_after=error.retry_after)


Confirmed = Callable[[Sequence[DeviceResult]], None]
"""Called by a connector with the results of each request as the target answers it, before the next
request of the chunk goes out: the run records them, so a crash re-sends at most the requests in flight."""


class Pacer(Protocol):
    """The pace of one target's calls, shared by every chunk in flight (``bindery.provisioning.quota`` makes
    them): the run takes a kind's up-front tokens from it, and a connector that paces each call itself
    (``KindSpec.quota.tokens`` of 0) takes its own."""

    def acquire(self, tokens: float = 1.0) -> float:
        """Block until the call may go; returns the seconds waited."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every caller back (a Retry-After from the target)."""

    def throttled(self) -> None:
        """A call was throttled: slow down for a while (AIMD)."""

    def current_rate(self) -> float:
        """Calls per second right now."""
        ...

    def follower(self, call: str) -> Pacer | None:
        """The shared pace of another call of the same target (aws-iot's calls after the registration)
        while other processes share this target's pace; None while this process is alone, when
        spacing them in the process is enough."""
        ...


class Connector(Protocol):
    """Provisions chunks of devices into one Product Cloud API. Everything the run uses of a connector is
    here: the run never sets or reads anything else on it."""

    @property
    def request_sizes(self) -> Sequence[int]:
        """Certificates per request sent so far, for kinds that size their requests (empty otherwise)."""
        ...

    def pace(self, pacer: Pacer) -> None:
        """The target's pacer, given before each chunk; a kind whose run takes its tokens up front ignores it."""

    def check(self) -> None:
        """Raise ConnectorError when the target is unreachable or speaks another protocol."""

    def provision(self, devices: Sequence[DeviceCert], confirmed: Confirmed | None = None) -> list[DeviceResult]:
        """One result per device, in order. Raise Transient when the whole chunk should be retried. The
        results of each request answered go to ``confirmed`` first (the returned list holds them too)."""
        ...

    def deprovision(self, devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
        """Remove devices; one result per device (PROVISIONED here means removed). Raise Permanent when
        the kind cannot remove anything."""
        ...

    def inventory(self, devices: Sequence[DeviceKey]) -> dict[str, Holding] | None:
        """What the target holds of these devices, read with list calls (not one call per device);
        None when the kind cannot be asked."""
        ...

    def close(self) -> None:
        """Release connections."""
