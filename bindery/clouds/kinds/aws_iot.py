"""Kind ``aws-iot``: AWS IoT Core directly, through boto3 (connector: ``bindery/clouds/aws_iot.py``)."""

from __future__ import annotations

import re
from typing import Literal

from bindery.clouds.base import Connector
from bindery.clouds.spec import REGION, Checked, CloudApiOptions, KindSpec, Quota, Removal, Target, match, need, option
from bindery.clouds.urls import check_url
from bindery.secrets import Secret
from bindery.settings import Settings


class AwsIotOptions(CloudApiOptions):
    kind: Literal["aws-iot"] = "aws-iot"
    region: str | None = option("Region", "The AWS region of the IoT Core account.", example="eu-central-1",
                                required=True)
    policy: str | None = option("IoT policy", "The IoT policy attached to each certificate.",
                                example="FleetPolicy", required=True)
    thing_prefix: str | None = option("Thing prefix", "Put before each device id to name its thing.",
                                      example="acme-")
    thing_type: str | None = option("Thing type", "The thing type of each thing (optional).")
    thing_group: str | None = option("Thing group", "A thing group each thing joins (optional).")
    role_arn: str | None = option("Role ARN", "A role to assume in the target account (optional).",
                                  example="arn:aws:iam::123456789012:role/bindery", max_length=2000)
    endpoint_url: str | None = option("Endpoint URL", "A private endpoint (or a test server) instead of AWS's.",
                                      max_length=2000, input="url")


def validate(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    out = {"region": match(need(options, "region"), REGION, "region", "an AWS region such as eu-central-1"),
           "policy": match(need(options, "policy"), re.compile(r"[\w+=,.@-]{1,128}"), "policy", "an IoT policy name"),
           "thing_prefix": match(options.get("thing_prefix") or "", re.compile(r"[A-Za-z0-9:_-]{0,64}"),
                                 "thing_prefix", "a thing-name prefix (letters, digits, : _ -)")}
    for name, pattern, what in (
        ("thing_type", re.compile(r"[A-Za-z0-9:_-]{1,128}"), "a thing type name"),
        ("thing_group", re.compile(r"[A-Za-z0-9:_-]{1,128}"), "a thing group name"),
        ("role_arn", re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"), "an IAM role ARN"),
    ):
        if options.get(name):
            out[name] = match(options[name].strip(), pattern, name, what)
    if options.get("endpoint_url"):
        out["endpoint_url"] = check_url(options["endpoint_url"].strip(), "endpoint_url", allow_private=True,
                                        allow_http_loopback=True, must_resolve=False)
    return Checked(out)


def connect(target: Target) -> Connector:
    from bindery.clouds.aws_iot import AwsIotConnector

    return AwsIotConnector(target.options, timeout=target.timeout, parallel=target.settings.aws_device_concurrency)


SPEC = KindSpec(
    kind="aws-iot", title="AWS IoT Core (direct)", order=40,
    summary="Registers each certificate in AWS IoT Core with a thing and your IoT policy, using the AWS "
            "credentials of the server (or a role it assumes).",
    options=AwsIotOptions, validate=validate,
    quota=Quota(rate=10.0, counts="device", tokens=lambda _devices: 0.0,
                source="RegisterCertificateWithoutCA 10/s (AttachPolicy 15/s, CreateThing and "
                       "AttachThingPrincipal 100/s follow it); the connector paces each registration"),
    connect=connect, removal=Removal(True), target_of=lambda s: s.get("region", ""),
    reconcile="certificates (ListCertificates) and things (ListThings, by the thing prefix)")
