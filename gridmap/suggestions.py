"""Suggested partition, the use case: read a community, its grids and households from the
store and propose balanced grids (:func:`gridmap.analysis.suggest.suggest_partition`).

Nothing is written: the CLI prints the proposal (``gridmap grids suggest``); a planner's
draft is made from it by the plans use case.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
from sqlalchemy.engine import Connection

from gridmap.access import NotVisible, Principal
from gridmap.analysis.suggest import SuggestError, Suggestion, suggest_partition
from gridmap.domain.standards import GridStandard
from gridmap.store.read import division_exists, read_layer


def suggest_for_community(conn: Connection, principal: Principal, community: str, *,
                          standard: GridStandard, band: tuple[int | None, int | None] = (
                              None, None),
                          locked: Sequence[str] = (), resolution: int | None = None,
                          seed: int = 0) -> Suggestion:
    """Proposed grids for *community* with the grids *locked* kept as they are.

    *band* overrides the standard's band for the community (urban or rural) at either end.
    Raises :class:`NotVisible` for a community the caller cannot see or that does not
    exist, :class:`SuggestError` for anything else that cannot be done (the message says
    what to fix).
    """
    principal.require_code(community, whole=False)
    if not division_exists(conn, community, "community"):
        raise NotVisible(f"no village/community with code {community!r} in the store")
    com = read_layer(conn, "communities", community=community)
    grids = read_layer(conn, "grids", community=community)
    households = read_layer(conn, "households", community=community)
    assert isinstance(com, gpd.GeoDataFrame) and isinstance(grids, gpd.GeoDataFrame)
    assert isinstance(households, gpd.GeoDataFrame)
    default = standard.band(com["urban_rural"].iat[0])
    low = band[0] if band[0] is not None else default[0]
    high = band[1] if band[1] is not None else default[1]
    lock = _locked(grids, community, locked)
    if households.empty:
        raise SuggestError(f"community {community} has no households: import them first "
                           "(gridmap import households FILE)")
    return suggest_partition(com, households, band=(low, high), locked=lock,
                             resolution=resolution, seed=seed)


def _locked(grids: gpd.GeoDataFrame, community: str, codes: Sequence[str]
            ) -> gpd.GeoDataFrame:
    codes = list(dict.fromkeys(codes))
    known = dict(zip(grids["code"], grids["kind"], strict=True))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise SuggestError(f"cannot lock {', '.join(unknown)}: not a grid of community "
                           f"{community} (gridmap export grids lists them)")
    other = [c for c in codes if known[c] != "comprehensive"]
    if other:
        raise SuggestError(f"cannot lock {', '.join(other)}: only comprehensive grids "
                           "partition a community (exclusive and micro grids sit inside them)")
    return grids[grids["code"].isin(codes)]
