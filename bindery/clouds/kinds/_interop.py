"""What the interop kinds (aws, azure, other) share: the vendor receivers' protocol, its default quota,
and that it cannot remove or list devices."""

from __future__ import annotations

from collections.abc import Callable

from bindery.clouds.base import Connector
from bindery.clouds.spec import Quota, Removal, Target

QUOTA = Quota(rate=20.0, counts="request", tokens=lambda _devices: 1.0,
              source="the vendors' quickstart receivers take 20 requests a second")
REMOVAL = Removal(False, "{name} speaks the interop protocol, which has no removal: remove the devices in the "
                         "Product Cloud, then {fix} to mark Bindery's records removed")


def connector(target: Target, auth: Callable[[], str]) -> Connector:
    from bindery.clouds.interop import InteropConnector

    return InteropConnector(target.options["url"], auth, timeout=target.timeout,
                            allow_private=target.settings.allow_private_targets, max_request=target.chunk_size)


def signed(target: Target) -> Connector:
    """Bearer ES256 JWTs signed with Bindery's key, ``aud`` the account or subscription."""
    from bindery.clouds.interop import bearer
    from bindery.clouds.tokens import signing_key

    signer = signing_key(session=target.session, settings=target.settings)
    audience = target.options["audience"]
    return connector(target, bearer(lambda: signer.token(audience)))
