"""The public vendor trust anchors Bindery ships (roots, intermediates, manifest signers), by vendor.

Published by the vendors at their PKI sites; `bindery trust add --vendor NAME` installs them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

VENDORS = ("infineon", "microchip", "stm")


def vendor_files(vendor: str) -> list[Path]:
    """The certificate files shipped for ``vendor`` ("all" for every vendor), in a stable order."""
    chosen = VENDORS if vendor == "all" else (vendor,)
    files: list[Path] = []
    for name in chosen:
        folder = resources.files(__package__) / name
        files += sorted((Path(str(item)) for item in folder.iterdir() if item.name.endswith(".crt")),
                        key=lambda p: p.name)
    return files
