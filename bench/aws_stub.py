"""A stub AWS IoT endpoint for throughput benches: the five calls Bindery's aws-iot connector makes, a
fixed latency per call and AWS's per-API quotas (at most ``rate`` calls in any one-second window, 429
ThrottlingException above it). Unlike moto it keeps no more than a dict per call, so at 100 devices/s
(400 calls/s) the stub is not the limit. Runs in its own process (``python -m bench.aws_stub``).

``/_bench/stats`` answers calls and throttled calls per API and the most calls any sliding second
received (throttled ones included): the "≤ quota in every sliding second" figure."""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import gc
import hashlib
import json
import re
import time
from collections import Counter, deque
from typing import Any

DEFAULT_QUOTAS = {"RegisterCertificateWithoutCA": 10.0, "AttachPolicy": 15.0, "CreateThing": 100.0,
                  "AttachThingPrincipal": 100.0}
RAISED_QUOTAS = dict.fromkeys(DEFAULT_QUOTAS, 100.0)
ACCOUNT, REGION = "123456789012", "us-east-1"
ROUTES = [("POST", re.compile(r"^/certificate/register-no-ca$"), "RegisterCertificateWithoutCA"),
          ("PUT", re.compile(r"^/target-policies/[^/]+$"), "AttachPolicy"),
          ("POST", re.compile(r"^/things/[^/]+$"), "CreateThing"),
          ("PUT", re.compile(r"^/things/[^/]+/principals$"), "AttachThingPrincipal"),
          ("GET", re.compile(r"^/endpoint$"), "DescribeEndpoint"),
          ("GET", re.compile(r"^/policies/[^/]+$"), "GetPolicy"),
          ("GET", re.compile(r"^/certificates/[0-9a-f]{64}$"), "DescribeCertificate")]


class Window:
    """At most ``rate`` accepted calls in any one-second window; every attempt is remembered for the
    busiest-second figure."""

    def __init__(self, rate: float):
        self.rate = rate
        self.accepted: deque[float] = deque()
        self.attempts: list[float] = []
        self.registered: list[float] = []  # every accepted call: the rate the target saw

    def allow(self, now: float) -> bool:
        self.attempts.append(now)
        while self.accepted and now - self.accepted[0] >= 1.0:
            self.accepted.popleft()
        if len(self.accepted) >= self.rate:
            return False
        self.accepted.append(now)
        self.registered.append(now)
        return True

    def busiest_second(self) -> int:
        times = self.attempts
        return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


class Stub:
    def __init__(self, quotas: dict[str, float], latency: float):
        self.quotas, self.latency = quotas, latency
        self.reset()

    def reset(self) -> None:
        self.windows = {name: Window(rate) for name, rate in self.quotas.items()}
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.certificates: dict[str, str] = {}
        self.throttled_at: list[float] = []
        self.started: float | None = None

    def stats(self) -> dict[str, Any]:
        registered = self.windows["RegisterCertificateWithoutCA"].registered
        span = registered[-1] - registered[0] if len(registered) > 1 else 0.0
        return {"calls": dict(self.calls), "throttled": dict(self.throttled), "throttled_at": self.throttled_at,
                "busiest_second": {name: w.busiest_second() for name, w in self.windows.items()},
                "quotas": self.quotas, "registered": len(registered),
                "registered_per_second": (len(registered) - 1) / span if span else 0.0,
                "timeline": [sum(1 for t in registered if int(t - registered[0]) == second)
                             for second in range(int(span) + 1)] if registered else []}

    def answer(self, name: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if name == "RegisterCertificateWithoutCA":
            pem = json.loads(body)["certificatePem"]
            der = base64.b64decode("".join(line for line in pem.splitlines() if "-----" not in line))
            certificate_id = hashlib.sha256(der).hexdigest()
            arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{certificate_id}"
            if certificate_id in self.certificates:
                return 409, {"message": "certificate exists", "resourceId": certificate_id, "resourceArn": arn}
            self.certificates[certificate_id] = arn
            return 200, {"certificateArn": arn, "certificateId": certificate_id}
        if name == "CreateThing":
            thing = path.rsplit("/", 1)[1]
            return 200, {"thingName": thing, "thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}",
                         "thingId": hashlib.md5(thing.encode()).hexdigest()}
        if name == "DescribeEndpoint":
            return 200, {"endpointAddress": "stub-ats.iot.us-east-1.amazonaws.com"}
        if name == "GetPolicy":
            policy = path.rsplit("/", 1)[1]
            return 200, {"policyName": policy, "policyArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/{policy}",
                         "policyDocument": "{}"}
        if name == "DescribeCertificate":
            certificate_id = path.rsplit("/", 1)[1]
            if certificate_id not in self.certificates:
                return 404, {"message": "no such certificate"}
            return 200, {"certificateDescription": {"certificateArn": self.certificates[certificate_id],
                                                    "certificateId": certificate_id, "status": "ACTIVE"}}
        return 200, {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        if path == "/_bench/stats":
            status, answer = 200, self.stats()
        elif path == "/_bench/reset":
            self.reset()
            status, answer = 200, {"ok": True}
        else:  # the quota counts a call when it arrives, as AWS does; the answer comes after the latency
            name = next((n for verb, pattern, n in ROUTES if verb == method and pattern.match(path)), None)
            if name is None:
                status, answer = 404, {"message": f"the stub has no {method} {path}"}
            else:
                self.calls[name] += 1
                self.started = self.started or time.monotonic()
                window = self.windows.get(name)
                if window is not None and not window.allow(time.monotonic()):
                    self.throttled[name] += 1
                    self.throttled_at.append(round(time.monotonic() - (self.started or time.monotonic()), 2))
                    status, answer = 429, {"message": "Rate exceeded"}
                    headers.append((b"x-amzn-errortype", b"ThrottlingException"))
                else:
                    status, answer = self.answer(name, path, body)
                    if status == 409:
                        headers.append((b"x-amzn-errortype", b"ResourceAlreadyExistsException"))
            await asyncio.sleep(self.latency)
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--raised", action="store_true", help="every quota at 100/s")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    stub = Stub(RAISED_QUOTAS if args.raised else DEFAULT_QUOTAS, args.latency)
    gc.freeze()  # the rig's own pauses would bunch arrivals its quota counts: keep the collector quiet
    gc.set_threshold(100_000, 50, 1000)
    uvicorn.run(stub, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
