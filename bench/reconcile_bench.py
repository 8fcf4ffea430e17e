"""Reconciling one aws-iot target holding 100,000 recorded devices (moto behind the bench proxy, 50 ms
per call), with the list calls it makes.

Run: bench/reconcile [--devices 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.memory_bench import measured
from bench.provision_bench import BID, aws_rig, bind_to_target, peak_rss

REGION = "us-east-1"


def certificates(count: int) -> list[tuple[str, str, str]]:
    """(device_id, PEM, fingerprint) for ``count`` devices; one key pair signs them all (a bench shortcut:
    each certificate still has its own subject, serial and fingerprint)."""
    from bindery.crypto.certs import fingerprint, pem_of

    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")])
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        device_id = f"B{i:07d}"
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
                .issuer_name(issuer).public_key(key.public_key()).serial_number(i + 1).not_valid_before(now)
                .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256()))
        out.append((device_id, pem_of(cert), fingerprint(cert)))
    return out


def prepare(devices: list[tuple[str, str, str]], proxy: str) -> None:
    from sqlalchemy import insert
    from sqlmodel import col, select

    from bindery import db
    from bindery.models.catalog import Batch, Device
    from bindery.models.provisioning import ProvisioningRecord
    from bindery.settings import get_settings

    settings = get_settings()
    db.upgrade(settings)
    now = datetime.now(UTC)
    with db.session_scope(settings) as session:
        batch = Batch(bid=BID, vendor="bench", device_count=len(devices), source_format="bench",
                      source_name="bench", source_sha256="0" * 64)
        session.add(batch)
        session.flush()
        for start in range(0, len(devices), 10_000):
            session.execute(insert(Device), [{
                "batch_id": batch.id, "device_id": d, "certificate_pem": pem, "fingerprint_sha256": fp,
                "subject_cn": d, "serial_hex": "1", "issuer": "CN=Bench CA", "key_type": "EC P-256",
                "not_before": now, "not_after": now} for d, pem, fp in devices[start:start + 10_000]])
        batch_id = batch.id
    api_id = bind_to_target(proxy)
    with db.session_scope(settings) as session:
        ids = list(session.exec(select(Device.id).order_by(col(Device.id))).all())
        for start in range(0, len(ids), 10_000):
            session.execute(insert(ProvisioningRecord), [{
                "device_id": pk, "batch_id": batch_id, "cloud_api_id": api_id, "status": "provisioned",
                "attempts": 1, "provisioned_at": now} for pk in ids[start:start + 10_000]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    with aws_rig(raised=True) as (proxy, tmp):
        started = time.perf_counter()
        devices = certificates(args.devices)
        prepare(devices, proxy)
        for start in range(0, len(devices), 10_000):
            part = devices[start:start + 10_000]
            httpx.post(f"{proxy}/_bench/seed", json={"region": REGION, "pems": [p for _, p, _ in part],
                                                     "things": [d for d, _, _ in part]}, timeout=600).raise_for_status()
        print(f"{args.devices} devices recorded and held by the target, prepared in "
              f"{time.perf_counter() - started:.0f} s")
        report = tmp / "reconcile.json"
        seconds, mb, _ = measured([sys.executable, "-m", "bindery.cli", "reconcile", "--report", str(report)],
                                  dict(os.environ), ok=(0, 3))
        drift = json.loads(report.read_text())
        calls = httpx.get(f"{proxy}/_bench/stats").json()["calls"]
        print(f"bindery reconcile (its own process): {seconds:.1f} s for {args.devices} recorded devices "
              f"({args.devices / seconds:,.0f} devices/s), peak RSS {mb:.0f} MB")
        print(f"report: {json.dumps(drift)[:300]}")
        print("calls: " + ", ".join(f"{name} {count}" for name, count in sorted(calls.items())))
        print(f"this bench process (generates and seeds the certificates): {peak_rss()}")


if __name__ == "__main__":
    main()
