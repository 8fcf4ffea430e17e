"""Kind ``aws``: a vendor's interop receiver behind AWS API Gateway (Bearer JWT, ``aud`` the account)."""

from __future__ import annotations

import re
from typing import Literal

from bindery.clouds.kinds import _interop
from bindery.clouds.spec import REGION, Checked, CloudApiOptions, KindSpec, match, need, option
from bindery.clouds.urls import check_url
from bindery.errors import FieldError
from bindery.secrets import Secret
from bindery.settings import Settings

DEFAULT_STAGE = "$default"


class AwsOptions(CloudApiOptions):
    kind: Literal["aws"] = "aws"
    account_id: str | None = option("AWS account ID", "The 12-digit AWS account the receiver runs in (the "
                                    "JWT audience).", example="123456789012", required=True)
    gateway_id: str | None = option("API Gateway ID", "The receiver's API Gateway ID.", example="abc123defg")
    region: str | None = option("Region", "The AWS region of the API Gateway.", example="eu-central-1")
    stage: str | None = option("Stage", "The API Gateway stage ($default: an HTTP API).", example="prod")
    url: str | None = option("Receiver URL", "Any https URL instead of gateway, region and stage (a custom "
                             "domain, an HTTP API without a stage).", example="https://iot.example.com/interop",
                             max_length=2000, input="url")


def gateway_url(gateway: str, region: str, stage: str) -> str:
    """The receiver's URL on a REST API stage, or on an HTTP API's ``$default`` stage (no stage in the path)."""
    prefix = "" if stage == DEFAULT_STAGE else f"/{stage}"
    return f"https://{gateway}.execute-api.{region}.amazonaws.com{prefix}/interop"


def validate(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    """Gateway, region and stage make the URL; ``url`` instead takes any https URL. The JWT audience stays
    the account ID either way."""
    account = match(need(options, "account_id"), re.compile(r"\d{12}"), "account_id", "a 12-digit AWS account ID")
    out = {"account_id": account, "audience": account}
    for name, pattern, what in (
        ("gateway_id", re.compile(r"[a-z0-9]{1,32}"), "an API Gateway ID (lower-case letters and digits)"),
        ("region", REGION, "an AWS region such as eu-central-1"),
        ("stage", re.compile(r"\$default|[A-Za-z0-9_-]{1,128}"), "an API Gateway stage (or $default)"),
    ):
        if options.get(name) or not options.get("url"):
            out[name] = match(need(options, name), pattern, name, what)
    if options.get("url"):
        url = options["url"].strip()
        if not url.startswith("https://"):
            raise FieldError("url", f"{url[:200]!r} must be an https URL")
        out["url"] = check_url(url, "url", allow_private=settings.allow_private_targets, must_resolve=check)
    else:
        out["url"] = gateway_url(out["gateway_id"], out["region"], out["stage"])
        check_url(out["url"], "gateway_id", allow_private=settings.allow_private_targets, must_resolve=check)
    return Checked(out)


def derived(stored: dict[str, str]) -> set[str]:
    """The URL when it was made from gateway, region and stage: an update makes it again."""
    made = gateway_url(stored.get("gateway_id", ""), stored.get("region", ""), stored.get("stage", ""))
    return {"url"} if stored.get("url") == made else set()


SPEC = KindSpec(
    kind="aws", title="AWS interop receiver (API Gateway)", order=10,
    summary="A vendor's quickstart receiver in your AWS account, reached through API Gateway; Bindery signs "
            "each request with its key (bindery keys public).",
    options=AwsOptions, validate=validate, quota=_interop.QUOTA, connect=_interop.signed,
    removal=_interop.REMOVAL, reconcile=None, derived=derived)
