"""Statistical division codes (12 digits) and grid codes (15 digits).

County/district: 6-digit GB/T 2260 code; township/sub-district: +3 digits (first digit 0 =
sub-district, 1 = town, 2-3 = township); village/community: +3 digits. A grid code is its
community's 12 digits and a 3-digit sequence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

DivisionLevel = Literal["county", "township", "community"]
GridKind = Literal["comprehensive", "exclusive", "micro"]

DIVISION_CODE = re.compile(r"^[0-9]{12}$")
GRID_CODE = re.compile(r"^[0-9]{15}$")


def division_level(code: str) -> DivisionLevel:
    """The level a 12-digit division code denotes.

    Examples
    --------
    >>> division_level("610113000000"), division_level("610113002000")
    ('county', 'township')
    >>> division_level("610113002015")
    'community'
    """
    if not DIVISION_CODE.match(code):
        raise ValueError(f"{code!r} is not a 12-digit statistical division code")
    if code[6:] == "000000":
        return "county"
    if code[9:] == "000":
        return "township"
    return "community"


def parent_code(code: str) -> str | None:
    """The parent division's code, or None for a county.

    Examples
    --------
    >>> parent_code("610113002015")
    '610113002000'
    """
    level = division_level(code)
    if level == "county":
        return None
    if level == "township":
        return code[:6] + "000000"
    return code[:9] + "000"


def township_kind(code: str) -> Literal["sub-district", "town", "township"]:
    """Sub-district (0xx), town (1xx) or township (2xx, 3xx) from the township digits."""
    first = code[6]
    return "sub-district" if first == "0" else "town" if first == "1" else "township"


def grid_code(community_code: str, sequence: int) -> str:
    """The 15-digit code of the *sequence*-th grid of a community.

    Examples
    --------
    >>> grid_code("610113002015", 7)
    '610113002015007'
    """
    if division_level(community_code) != "community":
        raise ValueError(f"{community_code} is not a village/community code")
    if not 1 <= sequence <= 999:
        raise ValueError(f"grid sequence {sequence} is outside 1..999")
    return f"{community_code}{sequence:03d}"


def reading_order(x: Sequence[float], y: Sequence[float], *, band: float) -> list[int]:
    """Indices of points in the numbering order of grids: rows north→south, each row
    west→east (the Beijing DB11 / Xi'an DB6101/T 3185 rule). Points whose y differs by less
    than *band* (in the units of y) from the row's northernmost point share a row.

    Examples
    --------
    >>> reading_order([0, 10, 0, 10], [10, 11, 0, 1], band=5)
    [0, 1, 2, 3]
    """
    order = sorted(range(len(x)), key=lambda i: -y[i])
    rows: list[list[int]] = []
    top = float("inf")
    for i in order:
        if not rows or top - y[i] > band:
            rows.append([])
            top = y[i]
        rows[-1].append(i)
    return [i for row in rows for i in sorted(row, key=lambda j: x[j])]
