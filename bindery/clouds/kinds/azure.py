"""Kind ``azure``: a vendor's interop receiver in Azure (Bearer JWT, ``aud`` the subscription)."""

from __future__ import annotations

import uuid
from typing import Literal

from bindery.clouds.kinds import _interop
from bindery.clouds.spec import Checked, CloudApiOptions, KindSpec, need, option
from bindery.clouds.urls import check_url
from bindery.errors import FieldError
from bindery.secrets import Secret
from bindery.settings import Settings


class AzureOptions(CloudApiOptions):
    kind: Literal["azure"] = "azure"
    interop_url: str | None = option("Interop URL", "The https URL of the interop receiver.",
                                     example="https://receiver.example.net/interop", max_length=2000,
                                     input="url", required=True)
    subscription_id: str | None = option("Subscription ID", "The Azure subscription's UUID (the JWT audience).",
                                         example="00000000-0000-0000-0000-000000000000", required=True)


def validate(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    url = need(options, "interop_url")
    if not url.startswith("https://"):
        raise FieldError("interop_url", f"{url[:200]!r} must be an https URL")
    check_url(url, "interop_url", allow_private=settings.allow_private_targets, must_resolve=check)
    subscription = need(options, "subscription_id")
    try:
        subscription = str(uuid.UUID(subscription))
    except ValueError:
        raise FieldError("subscription_id", f"{subscription[:200]!r} is not a UUID") from None
    return Checked({"url": url, "interop_url": url, "subscription_id": subscription, "audience": subscription})


SPEC = KindSpec(
    kind="azure", title="Azure interop receiver", order=20,
    summary="A vendor's quickstart receiver in your Azure subscription; Bindery signs each request with its key.",
    options=AzureOptions, validate=validate, quota=_interop.QUOTA, connect=_interop.signed,
    removal=_interop.REMOVAL, reconcile=None)
