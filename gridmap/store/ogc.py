"""Feature queries behind OGC API Features: collections, paging, bbox, property selection and
CQL2 filters (parsed by pygeofilter into SQLAlchemy clauses over an allowlist of columns)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pygeofilter import ast as cql_ast
from pygeofilter.backends.sqlalchemy.evaluate import to_filter
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy.engine import Connection

from gridmap.domain.access import Resource, Scope
from gridmap.domain.layers import CARE_FLAGS
from gridmap.store import tables
from gridmap.store.scope import in_scope


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    table: Table
    key: str
    properties: tuple[str, ...]
    where: tuple[tuple[str, str], ...] = ()
    resource: Resource = Resource.boundaries  # who may read it
    scope_column: str = "code"                # the code that places a row in a scope
    personal: tuple[tuple[str, str, str], ...] = ()  # (property, FieldRules field, kind)

    def base_filter(self) -> list[ColumnElement[bool]]:
        return [self.table.c[col] == value for col, value in self.where]


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    Collection("townships", "Townships and sub-districts", tables.division, "code",
               ("code", "name", "urban_rural", "population", "parent_code"),
               (("level", "township"),)),
    Collection("communities", "Villages and communities", tables.division, "code",
               ("code", "name", "urban_rural", "population", "parent_code"),
               (("level", "community"),)),
    Collection("grids", "Grids (current version)", tables.grid, "code",
               ("code", "name", "kind", "community_code", "parent_grid_code", "version")),
    Collection("households", "Households", tables.household, "id",
               ("id", "address", "head_name", "phone", "residents", *CARE_FLAGS, "grid_code"),
               resource=Resource.households, scope_column="grid_code",
               personal=(("address", "address", "address"),
                         ("head_name", "household_name", "name"),
                         ("phone", "household_phone", "phone"),
                         *((flag, "care_flags", "flag") for flag in CARE_FLAGS))),
    Collection("facilities", "Service facilities", tables.facility, "id",
               ("id", "type", "name", "capacity", "grid_code"),
               resource=Resource.facilities, scope_column="grid_code"),
    Collection("incidents", "Incidents", tables.incident, "id",
               ("id", "category", "description", "reported_at", "status", "grid_code"),
               resource=Resource.incidents, scope_column="grid_code",
               personal=(("description", "incident_description", "text"),)),
)}


class FilterError(ValueError):
    """A CQL2 filter that cannot be applied; the message says why."""


def cql2_clause(collection: Collection, text: str, queryables: tuple[str, ...]
                ) -> ColumnElement[bool]:
    mapping = {p: collection.table.c[p] for p in queryables}
    try:
        ast = parse_cql2_text(text)
    except Exception as exc:
        raise FilterError(f"filter is not valid CQL2 text: {str(exc).splitlines()[0]}") from exc
    unknown = sorted(set(_attributes(ast)) - set(queryables))
    if unknown:
        raise FilterError(f"filter uses unknown properties {', '.join(unknown)}; queryables: "
                          f"{', '.join(queryables)}")
    try:
        return to_filter(ast, mapping)
    except (KeyError, AttributeError) as exc:
        raise FilterError(f"filter uses an unknown property {exc}; queryables: "
                          f"{', '.join(queryables)}") from exc
    except Exception as exc:
        raise FilterError(f"filter cannot be applied: {exc}") from exc


def _attributes(node: Any) -> list[str]:
    if isinstance(node, cql_ast.Attribute):
        return [node.name]
    subs = node.get_sub_nodes() if isinstance(node, cql_ast.Node) else []
    out: list[str] = []
    for sub in subs if isinstance(subs, list) else [subs]:
        out += _attributes(sub)
    return out


def extent(conn: Connection, collection: Collection, *, scope: Scope) -> list[float] | None:
    geom = collection.table.c.geom
    row = conn.execute(select(func.ST_XMin(func.ST_Extent(geom)),
                              func.ST_YMin(func.ST_Extent(geom)),
                              func.ST_XMax(func.ST_Extent(geom)),
                              func.ST_YMax(func.ST_Extent(geom))).where(
        *collection.base_filter(),
        in_scope(collection.table.c[collection.scope_column], scope))).one()
    return None if row[0] is None else [float(v) for v in row]


def items(conn: Connection, collection: Collection, *, scope: Scope, limit: int, offset: int,
          bbox: tuple[float, float, float, float] | None = None, queryables: tuple[str, ...] = (),
          properties: list[str] | None = None, cql2: str | None = None,
          feature_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """(features, numberMatched) of one page of the rows in *scope*; a filter may use the
    *queryables* only."""
    table = collection.table
    props = properties if properties is not None else list(collection.properties)
    conditions = [*collection.base_filter(), func.ST_IsValid(table.c.geom),
                  in_scope(table.c[collection.scope_column], scope)]
    if bbox is not None:
        conditions.append(func.ST_Intersects(table.c.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    if cql2:
        conditions.append(cql2_clause(collection, cql2, queryables))
    if feature_id is not None:
        conditions.append(table.c[collection.key] == feature_id)
    where = and_(*conditions)
    matched = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    cols = [table.c[collection.key].label("fid"), *(table.c[p] for p in props),
            func.ST_AsGeoJSON(table.c.geom, 7).label("geojson")]
    rows = conn.execute(select(*cols).where(where).order_by(table.c[collection.key])
                        .limit(limit).offset(offset)).mappings().all()
    features = []
    for row in rows:
        properties_ = {p: _jsonable(row[p]) for p in props}
        features.append({"type": "Feature", "id": str(row["fid"]).strip(),
                         "geometry": json.loads(row["geojson"]), "properties": properties_})
    return features, int(matched)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


