"""Spreadsheet safety for the CSV files Bindery writes and reads back.

A cell that starts with ``= + - @``, tab or carriage return may run as a formula when a spreadsheet
opens the file. Text cells (device_id, group_id) that start with one of these, or with the escape
character ``'`` itself, are written with a leading ``'``; the importer removes exactly one leading
``'``, so export -> import is exact. Certificate cells are left verbatim: Bindery only writes the
PEM it re-encoded itself from the DER (armor lines and base64, no attacker text), and cloud upload
tools need the exact PEM. A spreadsheet may show such a cell as an error; it cannot run it.
"""

from __future__ import annotations

DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(DANGEROUS_STARTS) else value


def restore(value: str) -> str:
    return value[1:] if value.startswith("'") else value
