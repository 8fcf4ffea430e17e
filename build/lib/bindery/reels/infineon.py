"""Infineon OPTIGA Trust M reel bundles.

A .7z holding nested archives ``<reelID>_<GUID>_<slot>_Certs.7z`` (one ``<chipID>_<slot>.pem`` per
chip; E0E0/E0E1 are ECC, E0E2 is RSA-2048), a password-protected ``..._keys.7z`` and a README.txt;
the last two are ignored. BID = reel ID, device_id = chip ID.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from bindery.errors import BadInput
from bindery.reels.archive import checked_members, extract_each, extract_to_file, open_archive
from bindery.reels.base import RawEntry, ReadRequest, ReelHeader, Sink

CERTS_MEMBER = re.compile(r"^(?P<reel>.+)_(?P<guid>[^_]+)_(?P<slot>E0E[0-9A-F])_Certs\.7z$")


def read_infineon(request: ReadRequest, sink: Sink) -> ReelHeader:
    source = request.path.name
    sets: dict[str, tuple[str, str]] = {}
    with open_archive(request.path, source) as outer:
        for info in checked_members(outer, source, request.limits):
            match = CERTS_MEMBER.match(PurePosixPath(info.filename).name)
            if match:
                sets[match["slot"]] = (info.filename, match["reel"])
        if not sets:
            raise BadInput(f"{source}: no <reel>_<GUID>_<slot>_Certs.7z members: not an Infineon reel bundle")
        reels = {reel for _member, reel in sets.values()}
        if len(reels) > 1:
            raise BadInput(f"{source}: certificate sets name different reels: {', '.join(sorted(reels))}")
        if request.slot not in sets:
            raise BadInput(f"{source}: no {request.slot} certificate set in the bundle "
                           f"(it has {', '.join(sorted(sets))}; choose one with --slot)")
        member, reel = sets[request.slot]
        inner_path = request.workdir / "certs.7z"
        extract_to_file(outer, member, inner_path, source, request.limits)

    inner_source = f"{source}:{PurePosixPath(member).name}"
    pem_name = re.compile(rf"^(?P<chip>.+)_{request.slot}\.pem$", re.IGNORECASE)

    def handle(name: str, data: bytes) -> None:
        base = PurePosixPath(name).name
        match = pem_name.match(base)
        ref = f"{PurePosixPath(member).name}/{name}"
        if not match:
            sink(RawEntry(ref, problem=f"member is not named <chipID>_{request.slot}.pem"))
            return
        sink(RawEntry(ref, device_id=match["chip"], group_id=reel, cert=data))

    with open_archive(inner_path, inner_source) as inner:
        names = [info.filename for info in checked_members(inner, inner_source, request.limits)]
        extract_each(inner, names, inner_source, request.limits, handle)
    inner_path.unlink(missing_ok=True)
    return ReelHeader(format="infineon", vendor="infineon", bid=reel, model="OPTIGA Trust M", slot=request.slot)
