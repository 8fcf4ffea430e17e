"""The kinds of Product Cloud API: every module in this package exports ``SPEC`` (a
:class:`~bindery.clouds.spec.KindSpec`). Adding a kind is adding a module here; everything else reads
the specs through :func:`specs` and :func:`spec_of`. The modules stay light (their connectors' libraries
are imported when a connector is made), so the CLI can read every spec at start-up."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from bindery.clouds.spec import KindSpec
from bindery.errors import FieldError


@cache
def _registry() -> dict[str, KindSpec]:
    found: list[KindSpec] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue  # shared parts of several kinds
        spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SPEC", None)
        if isinstance(spec, KindSpec):
            found.append(spec)
    return {spec.kind: spec for spec in sorted(found, key=lambda s: (s.order, s.kind))}


def specs() -> list[KindSpec]:
    """Every kind, in the order listings and the kind chooser show them."""
    return list(_registry().values())


def kinds() -> tuple[str, ...]:
    return tuple(_registry())


def spec_of(kind: str) -> KindSpec:
    try:
        return _registry()[kind]
    except KeyError:
        raise FieldError("kind", f"{kind[:40]!r} is not one of {', '.join(kinds())}") from None
