"""Place search a dispatcher can trust: roads, townships, communities, grids, facilities and
buildings by name (a building by its address), in characters (typos allowed), in pinyin or
by pinyin initials; each hit with its similarity score; a warning, with the alternatives,
when the best hit is weak or the best hits lie far apart (a typo must not silently jump to
another township).

The caller's divisions come first. Townships, communities and grids are found within them
only (outside them a division is not there for the caller, as everywhere else); public
places — roads, facilities, buildings by name or compound address, none of them anyone's
personal data — are found outside them too, but ranked as if their score were
:data:`OUTSIDE_RANK` lower (so one of the caller's own comes before an equally good one
elsewhere, while an exact name elsewhere still beats a weak guess at home), shown with their
true score, flagged ``inside_scope: false`` with a note, and a best hit outside the
caller's divisions is a warning of its own (``outside_scope``).

The names (about 2,300 in the demo district) are read once and kept with their pinyin;
a change notice of the tables they come from makes the next search read them again.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz
from sqlalchemy import Engine, text

from gridmap.domain.access import Scope
from gridmap.i18n import Language, _
from gridmap.store.listen import Change
from gridmap.store.sqlfiles import read_sql

WATCHED = frozenset({"household", "division", "grid", "facility", "building", "street_edge"})
WEAK = 0.75       # a best score below this is a guess: say so
APART_M = 1000.0  # near-equal best hits this far apart: say so
NEAR_EQUAL = 0.05
OUTSIDE_RANK = 0.1  # what being outside the caller's divisions costs a public place's rank
PUBLIC = frozenset({"road", "facility", "building"})  # found outside the caller's divisions
STREET_PART = 0.6  # what a match of the query's street part alone is worth: less than a
                   # place whose name holds the whole query (the house number too)
LATIN = re.compile(r"^[a-z' ]+$")
Warning_ = Literal["weak", "outside_scope", "apart"]


@dataclass(frozen=True)
class Place:
    kind: str          # road, township, community, grid, facility, building
    name: str
    id: str
    type: str | None   # a grid's kind, a facility's type
    area: str          # the division or grid code the caller's scope is checked against
    lon: float
    lat: float
    township_code: str
    pinyin: str        # cuihualu
    initials: str      # chl


def _pinyin(name: str) -> tuple[str, str]:
    syllables = [s.lower() for s in lazy_pinyin(name, style=Style.NORMAL, errors="ignore")]
    return "".join(syllables), "".join(s[0] for s in syllables if s)


def similarity(query: str, place: Place) -> float:
    """How well *query* names *place*, 0–1: characters against the name (the query's street
    part too, worth less: "翠花路152号" → 翠华路), or Latin letters against its pinyin and
    initials. A query found in the name (exactly, or with a typo) scores by how well it
    matches there and how much of the name it covers, so that the building at the address
    comes before its road.

    >>> p = Place("road", "翠华路", "", None, "", 0, 0, "", *_pinyin("翠华路"))
    >>> round(similarity("翠花路", p), 2), similarity("翠华路", p), similarity("chl", p)
    (0.67, 1.0, 1.0)
    >>> b = Place("building", "翠华路152号晋昌社区1号楼", "", None, "", 0, 0, "", "", "")
    >>> [round(similarity(q, x), 2) for q in ("翠华路152号", "翠花路152号") for x in (b, p)]
    [0.8, 0.6, 0.69, 0.4]
    """
    q = query.strip().lower()
    if LATIN.match(q):
        q = q.replace(" ", "").replace("'", "")
        targets = [place.pinyin, place.initials]
    else:
        name = place.name.lower()
        street = re.match(r"^[^0-9０-９]+", q)
        whole = _score(q, name)
        if street is None or street.group(0) == q:
            return whole
        # the street part alone names less than the query: a building with the whole
        # address comes before its road
        return max(whole, STREET_PART * _score(street.group(0), name))
    return max(_score(q, t) for t in targets)


def _score(q: str, target: str) -> float:
    if not q or not target:
        return 0.0
    if q == target:
        return 1.0
    whole = fuzz.ratio(q, target) / 100
    if len(q) >= len(target):
        return whole
    # the query within the name, exactly or with a typo (its best-matching stretch), worth
    # more the more of the name it covers
    within = fuzz.partial_ratio(q, target) / 100 * (0.6 + 0.4 * len(q) / len(target))
    return max(whole, within)


def _distance_m(a: Place, b: Place) -> float:
    """Great-circle metres (equirectangular: the hits of one search lie within a city)."""
    x = math.radians(b.lon - a.lon) * math.cos(math.radians((a.lat + b.lat) / 2))
    y = math.radians(b.lat - a.lat)
    return 6_371_000 * math.hypot(x, y)


class PlaceIndex:
    """The names of the store's places and their pinyin, read when first needed and again
    after a change (a ChangeHub subscriber)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._places: list[Place] | None = None
        self._lock = threading.Lock()

    def places(self) -> list[Place]:
        with self._lock:
            if self._places is None:
                with self.engine.connect() as conn:
                    rows = conn.execute(text(read_sql("search_places.sql"))).all()
                self._places = [Place(r.kind, r.name, r.id, r.type, r.area, float(r.lon),
                                      float(r.lat), r.township_code, *_pinyin(r.name))
                                for r in rows]
            return self._places

    def apply(self, changes: list[Change]) -> None:
        if any(change.table in WATCHED for change in changes):
            with self._lock:
                self._places = None

    def search(self, query: str, *, scope: Scope, kinds: frozenset[str], limit: int = 10,
               language: Language | None = None) -> dict[str, Any]:
        """The places of *kinds* that *query* names best, the caller's (within *scope*)
        first, public places elsewhere after them (see the module's note), each with its
        score and whether it lies inside *scope*; ``warning`` (weak, outside_scope, apart, else
        None) when the best one should be checked; the notes in *language*."""
        found: list[tuple[float, float, Place, bool]] = []
        for place in self.places():
            if place.kind not in kinds:
                continue
            inside = scope.covers(place.area) or scope.overlaps(place.area)
            if not inside and place.kind not in PUBLIC:
                continue
            score = similarity(query, place)
            if score >= 0.3:
                rank = round(score - (0.0 if inside else OUTSIDE_RANK), 6)  # ties stay ties
                found.append((rank, score, place, inside))
        found.sort(key=lambda f: (-f[0], not f[3], len(f[2].name), f[2].name, f[2].id))
        hits = found[:limit]
        warning: Warning_ | None = None
        if hits and hits[0][1] < WEAK:
            warning = "weak"
        elif hits and not hits[0][3]:
            warning = "outside_scope"
        elif len(hits) > 1 and hits[0][1] - hits[1][1] <= NEAR_EQUAL and \
                _distance_m(hits[0][2], hits[1][2]) > APART_M:
            warning = "apart"
        return {"query": query, "warning": warning,
                "hits": [{"kind": p.kind, "name": p.name, "id": p.id, "type": p.type,
                          "township_code": p.township_code, "lon": p.lon, "lat": p.lat,
                          "score": round(s, 3), "inside_scope": inside,
                          "note": None if inside else _("outside your divisions", language)}
                         for _rank, s, p, inside in hits]}
