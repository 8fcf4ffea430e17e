"""Provisioning throughput into AWS IoT (a moto server behind a proxy with 50 ms latency and AWS's
per-API quotas), next to a plain sequential boto3 loop, plus the Prefect flow's overhead over the
same functions called directly.

Run: bench/provision [--devices 5000] [--raised] [--skip-flow] [--skip-loop]
     bench/provision --workers 3 [--devices 3000]   (scale-out: 1 and 3 Prefect workers, bench/scale_bench.py)
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

from bench.quota_proxy import DEFAULT_QUOTAS, RAISED_QUOTAS

ADMIN, BID, POLICY = "admin@bench.local", "BENCH-P", "BenchPolicy"


def start_stub(raised: bool) -> tuple[subprocess.Popen[bytes], str]:
    """moto and the quota proxy in their own process, so they do not share the GIL with Bindery."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "bench.quota_proxy", "--port", str(port), *(["--raised"] if raised else [])]
    stub = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/_bench/stats").raise_for_status()
            return stub, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stub.kill()
    raise RuntimeError("the AWS stub did not start")


@contextmanager
def aws_rig(raised: bool) -> Iterator[tuple[str, Path]]:
    """Fake AWS credentials, the moto + quota proxy stub and a fresh BINDERY_HOME; yields (proxy, tmp)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)
    stub, proxy = start_stub(raised)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["BINDERY_HOME"] = str(Path(tmp) / "home")
            reset_aws(proxy)
            yield proxy, Path(tmp)
    finally:
        stub.terminate()
        stub.wait(timeout=10)


def peak_rss() -> str:
    return f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"


def reset_aws(proxy: str) -> None:
    httpx.post(f"{proxy}/_bench/reset").raise_for_status()
    boto3.client("iot", endpoint_url=proxy, region_name="us-east-1").create_policy(
        policyName=POLICY, policyDocument='{"Version": "2012-10-17", "Statement": []}')


def throttled(proxy: str) -> int:
    return sum(httpx.get(f"{proxy}/_bench/stats").json()["throttled"].values())


def prepare(devices: int, proxy: str, quota: float, tmp: Path) -> None:
    from bindery import db
    from bindery.catalog.importer import import_reel
    from bindery.catalog.trust import add_anchors
    from bindery.reels.demo import write_demo_reel
    from bindery.settings import get_settings

    settings = get_settings()
    db.upgrade(settings)
    demo = write_demo_reel(out=tmp / "reel", bid=BID, devices=devices, fmt="bindery-csv", public_url="http://x")
    with db.session_scope(settings) as session:
        add_anchors(session=session, paths=demo.ca_files, actor="bench")
    import_reel(settings=settings, path=demo.reel)
    bind_to_target(proxy, quota)


def bind_to_target(proxy: str, quota: float | None = None) -> int:
    """Account Bench with its admin, batch BID bound to it, and the aws-iot API `iot` through the proxy;
    returns the API's id."""
    from bindery import accounts, audit, binding, db
    from bindery.access import actor_for
    from bindery.clouds.config import add_cloud_api
    from bindery.settings import get_settings

    settings = get_settings()
    with db.session_scope(settings) as session:
        accounts.create_account(session=session, name="Bench", actor=audit.operator_name())
        session.flush()
        accounts.add_user(session=session, email=ADMIN, account="Bench", role="admin", actor="bench")
    options = {"region": "us-east-1", "policy": POLICY, "endpoint_url": proxy}
    if quota is not None:
        options["quota"] = str(quota)
    with db.session_scope(settings) as session:
        actor = actor_for(session=session, email=ADMIN)
        binding.bind(session=session, actor=actor, bid=BID)
        api = add_cloud_api(session=session, settings=settings, actor=actor, name="iot", kind="aws-iot",
                            options=options)
        session.flush()
        assert api.id is not None
        return api.id


def forget_records() -> None:
    from bindery.provisioning.removal import deprovision_batch
    from bindery.settings import get_settings

    deprovision_batch(settings=get_settings(), user=ADMIN, bid=BID, cloud_api="iot", forget=True)


def run_direct() -> tuple[float, int]:
    from bindery.provisioning.service import provision_batch
    from bindery.settings import get_settings

    started = time.perf_counter()
    report = provision_batch(settings=get_settings(), user=ADMIN, bid=BID, cloud_api="iot")
    return time.perf_counter() - started, report.failed


def run_flow() -> tuple[float, int]:
    from prefect.testing.utilities import prefect_test_harness

    from bindery.flows.provisioning import provision_batch

    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        state = provision_batch(bid=BID, cloud_api="iot", user=ADMIN, return_state=True)
        elapsed = time.perf_counter() - started
    data = state.data if isinstance(getattr(state, "data", None), dict) else {}
    return elapsed, int(data.get("failed", 0)) if state.is_completed() else -1


def run_loop(proxy: str) -> tuple[float, int]:
    """What a script would do: boto3 with its standard retries, one device after another."""
    from sqlalchemy import text

    from bindery import db
    from bindery.settings import get_settings

    with db.get_engine(get_settings()).connect() as connection:
        rows = connection.execute(text("SELECT device_id, certificate_pem FROM device ORDER BY id")).all()
    client = boto3.client("iot", endpoint_url=proxy, region_name="us-east-1",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 10}))
    failed = 0
    started = time.perf_counter()
    for device_id, pem in rows:
        try:
            arn = client.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"]
            client.create_thing(thingName=device_id)
            client.attach_policy(policyName=POLICY, target=arn)
            client.attach_thing_principal(thingName=device_id, principal=arn)
        except Exception:
            failed += 1
    return time.perf_counter() - started, failed


def report(label: str, seconds: float, devices: int, failed: int, quota: float, throttled_calls: int) -> None:
    rate = devices / seconds
    print(f"{label:<40} {seconds:8.1f} s {rate:8.1f} devices/s  {rate / quota:5.2f} of the quota  "
          f"throttled calls {throttled_calls:5d}  failed devices {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--raised", action="store_true", help="quotas raised to 100/s (Cloud API quota 100)")
    parser.add_argument("--skip-flow", action="store_true")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--workers", type=int, default=0,
                        help="scale-out: one run with 1 worker, one with N (Prefect server, PostgreSQL, raised quota)")
    args = parser.parse_args()
    if args.workers:
        from bench.scale_bench import main as scale_out

        scale_out(args.devices, args.workers)
        return
    quotas = RAISED_QUOTAS if args.raised else DEFAULT_QUOTAS
    quota = quotas["RegisterCertificateWithoutCA"]
    with aws_rig(args.raised) as (proxy, tmp):
        os.environ["BINDERY_ALLOW_PRIVATE_TARGETS"] = "1"
        prepare(args.devices, proxy, quota, tmp)
        print(f"{args.devices} devices, quotas {'raised' if args.raised else 'default'} "
              f"(RegisterCertificateWithoutCA {quota:.0f}/s), 50 ms latency per call")
        direct, failed = run_direct()
        report("bindery, functions called directly", direct, args.devices, failed, quota, throttled(proxy))
        if not args.skip_flow:
            forget_records()
            reset_aws(proxy)
            seconds, failed = run_flow()
            report("bindery, provision-batch flow", seconds, args.devices, failed, quota, throttled(proxy))
            print(f"flow overhead: {seconds - direct:+.1f} s ({seconds / direct:.2f}x the direct run)")
        if not args.skip_loop:
            reset_aws(proxy)
            seconds, failed = run_loop(proxy)
            report("plain sequential boto3 loop", seconds, args.devices, failed, quota, throttled(proxy))
        print(peak_rss())


if __name__ == "__main__":
    main()
