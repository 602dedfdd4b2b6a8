"""Feature queries behind OGC API Features: collections, paging, bbox, property selection and
CQL2 filters (parsed by pygeofilter into SQLAlchemy clauses over an allowlist of columns)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from pygeofilter import ast as cql_ast
from pygeofilter.backends.sqlalchemy.evaluate import to_filter
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from sqlalchemy import Column, ColumnElement, FromClause, Table, and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gridmap.domain.access import Resource, Scope
from gridmap.domain.layers import CARE_FLAGS
from gridmap.store import tables
from gridmap.store.scope import in_scope


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    table: Table | FromClause  # a table, or a query over one (the grids as of a moment)
    key: str
    properties: tuple[str, ...]
    where: tuple[tuple[str, str], ...] = ()
    resource: Resource = Resource.boundaries  # who may read it
    scope_columns: tuple[str, ...] = ("code",)  # the code that places a row in a scope
    # (the first that is not NULL: an incident outside every grid belongs to its township)
    personal: tuple[tuple[str, str, str], ...] = ()  # (property, FieldRules field, kind)

    def scope_code(self) -> ColumnElement[str]:
        columns = [self.table.c[c] for c in self.scope_columns]
        return columns[0] if len(columns) == 1 else func.coalesce(*columns)

    def base_filter(self) -> list[ColumnElement[bool]]:
        return [self.table.c[col] == value for col, value in self.where]


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    Collection("townships", "Townships and sub-districts", tables.division, "code",
               ("code", "name", "urban_rural", "population", "parent_code"),
               (("level", "township"),)),
    Collection("communities", "Villages and communities", tables.division, "code",
               ("code", "name", "urban_rural", "population", "parent_code"),
               (("level", "community"),)),
    Collection("grids", "Grids (current version; datetime: as of a past moment)",
               tables.grid, "code",
               ("code", "name", "kind", "community_code", "parent_grid_code", "version")),
    Collection("households", "Households", tables.household, "id",
               ("id", "address", "head_name", "phone", "residents", *CARE_FLAGS, "grid_code"),
               resource=Resource.households, scope_columns=("grid_code",),
               personal=(("address", "address", "address"),
                         ("head_name", "household_name", "name"),
                         ("phone", "household_phone", "phone"),
                         *((flag, "care_flags", "flag") for flag in CARE_FLAGS))),
    Collection("facilities", "Service facilities", tables.facility, "id",
               ("id", "type", "name", "capacity", "grid_code"),
               resource=Resource.facilities, scope_columns=("grid_code",)),
    Collection("incidents", "Incidents", tables.incident, "id",
               ("id", "category", "description", "reported_at", "status", "grid_code"),
               resource=Resource.incidents, scope_columns=("grid_code", "township_code"),
               personal=(("description", "incident_description", "text"),)),
)}


def as_of(collection: Collection, at: datetime) -> Collection:
    """The grids collection as it was at *at*: the grids of the versions valid then
    (grid_history), with the same properties."""
    h, v = tables.grid_history, tables.grid_version
    past = (select(h.c.code, h.c.name, h.c.kind, v.c.community_code.label("community_code"),
                   h.c.parent_grid_code, v.c.version.label("version"), h.c.geom)
            .join(v, v.c.id == h.c.version_id)
            .where(v.c.valid_from <= at, or_(v.c.valid_to.is_(None), v.c.valid_to > at))
            .subquery("grid_as_of"))
    return replace(collection, table=past)


class FilterError(ValueError):
    """A CQL2 filter that cannot be applied; the message says why."""


def cql2_clause(collection: Collection, text: str, queryables: tuple[str, ...]
                ) -> ColumnElement[bool]:
    mapping = {p: collection.table.c[p] for p in queryables}
    if "\x00" in text:
        raise FilterError("filter must not contain a NUL character (\\x00): remove it")
    try:
        ast = parse_cql2_text(text)
    except Exception as exc:
        raise FilterError(f"filter is not valid CQL2 text: {str(exc).splitlines()[0]}") from exc
    unknown = sorted(set(_attributes(ast)) - set(queryables))
    if unknown:
        raise FilterError(f"filter uses unknown properties {', '.join(unknown)}; queryables: "
                          f"{', '.join(queryables)}")
    _Types(collection.table).check(ast)
    try:
        return to_filter(ast, mapping)
    except (KeyError, AttributeError) as exc:
        raise FilterError(f"filter uses an unknown property {exc}; queryables: "
                          f"{', '.join(queryables)}") from exc
    except Exception as exc:
        raise FilterError(f"filter cannot be applied: {exc}") from exc


Kind = Literal["text", "integer", "number", "boolean", "timestamp"]
NUMBERS = ("integer", "number")
KIND_NAMES: dict[Kind, str] = {"text": "text", "integer": "an integer", "number": "a number",
                               "boolean": "a boolean", "timestamp": "a timestamp"}
WRITE_AS: dict[Kind, str] = {
    "text": "a quoted string such as 'abc'", "integer": "a number such as 1",
    "number": "a number such as 1.5", "boolean": "TRUE or FALSE",
    "timestamp": "TIMESTAMP('2024-01-01T00:00:00Z') or DATE('2024-01-01')"}


def column_kind(column: Column[Any] | ColumnElement[Any]) -> Kind | None:
    """What a filter may compare a column with (None: not checked)."""
    try:
        python = column.type.python_type
    except NotImplementedError:
        return None
    if issubclass(python, bool):
        return "boolean"
    if issubclass(python, int):
        return "integer"
    if issubclass(python, str):
        return "text"
    if issubclass(python, date):  # datetime too
        return "timestamp"
    if issubclass(python, float) or python.__name__ == "Decimal":
        return "number"
    return None


def _literal_kind(value: object) -> Kind | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime | date):
        return "timestamp"
    return None


def _same(a: Kind, b: Kind) -> bool:
    return a == b or (a in NUMBERS and b in NUMBERS)


class _Types:
    """Checks that a filter compares each property with a value of its column's type, so a
    mismatch is a 400 naming the property (PostgreSQL would refuse the query: ``operator
    does not exist``)."""

    def __init__(self, table: Table | FromClause) -> None:
        self.table = table

    def kind(self, node: Any) -> Kind | None:
        if isinstance(node, cql_ast.Attribute):
            return column_kind(self.table.c[node.name])
        if isinstance(node, cql_ast.Arithmetic):
            for side in (node.lhs, node.rhs):
                k = self.kind(side)
                if k is not None and k not in NUMBERS:
                    raise FilterError(f"arithmetic ({node.op.value}) takes numbers, and "
                                      f"{self.show(side)} is {KIND_NAMES[k]}")
            kinds = {self.kind(node.lhs), self.kind(node.rhs)}
            return "integer" if kinds <= {"integer"} else "number"
        if isinstance(node, cql_ast.Function):
            return "text" if node.name == "lower" else None
        return _literal_kind(node)

    def show(self, node: Any) -> str:
        if isinstance(node, cql_ast.Attribute):
            return node.name
        if isinstance(node, str):
            return "'" + node.replace("'", "''") + "'"
        if isinstance(node, datetime | date):
            return f"{type(node).__name__.upper()}('{node.isoformat()}')"
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        return str(node)

    def compare(self, lhs: Any, rhs: Any) -> None:
        a, b = self.kind(lhs), self.kind(rhs)
        if a is None or b is None or _same(a, b):
            return
        if not isinstance(lhs, cql_ast.Attribute) and isinstance(rhs, cql_ast.Attribute):
            lhs, rhs, a, b = rhs, lhs, b, a
        if isinstance(lhs, cql_ast.Attribute):
            other = (f"the property {rhs.name}" if isinstance(rhs, cql_ast.Attribute)
                     else self.show(rhs))
            raise FilterError(f"filter: {lhs.name} is {KIND_NAMES[a]}: compare it with "
                              f"{WRITE_AS[a]}, not {other} ({KIND_NAMES[b]})")
        raise FilterError(f"filter compares {self.show(lhs)} ({KIND_NAMES[a]}) with "
                          f"{self.show(rhs)} ({KIND_NAMES[b]})")

    def check(self, node: Any) -> None:
        if isinstance(node, cql_ast.Comparison):
            self.compare(node.lhs, node.rhs)
        elif isinstance(node, cql_ast.Between):
            self.compare(node.lhs, node.low)
            self.compare(node.lhs, node.high)
        elif isinstance(node, cql_ast.In):
            for option in node.sub_nodes:
                self.compare(node.lhs, option)
        elif isinstance(node, cql_ast.Like):
            k = self.kind(node.lhs)
            if k is not None and k != "text":
                raise FilterError(f"filter: LIKE compares text, and {self.show(node.lhs)} is "
                                  f"{KIND_NAMES[k]}: use =, <, > or BETWEEN")
            if not isinstance(node.pattern, str | cql_ast.Function):
                raise FilterError("filter: LIKE takes a quoted pattern such as 'abc%'")
        for sub in _sub_nodes(node):
            if isinstance(sub, cql_ast.Node):
                self.check(sub)


def _sub_nodes(node: Any) -> list[Any]:
    subs = node.get_sub_nodes() if isinstance(node, cql_ast.Node) else []
    return subs if isinstance(subs, list) else [subs]


def _attributes(node: Any) -> list[str]:
    if isinstance(node, cql_ast.Attribute):
        return [node.name]
    out: list[str] = []
    for sub in _sub_nodes(node):
        out += _attributes(sub)
    return out


def extent(conn: Connection, collection: Collection, *, scope: Scope) -> list[float] | None:
    geom = collection.table.c.geom
    row = conn.execute(select(func.ST_XMin(func.ST_Extent(geom)),
                              func.ST_YMin(func.ST_Extent(geom)),
                              func.ST_XMax(func.ST_Extent(geom)),
                              func.ST_YMax(func.ST_Extent(geom))).where(
        *collection.base_filter(),
        in_scope(collection.scope_code(), scope))).one()
    return None if row[0] is None else [float(v) for v in row]


def items(conn: Connection, collection: Collection, *, scope: Scope, limit: int, offset: int,
          bbox: tuple[float, float, float, float] | None = None, queryables: tuple[str, ...] = (),
          properties: list[str] | None = None, cql2: str | None = None,
          feature_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """(features, numberMatched) of one page of the rows in *scope*; a filter may use the
    *queryables* only."""
    table = collection.table
    props = properties if properties is not None else list(collection.properties)
    # no validity test: polygons are valid by the tables' CHECK constraints, points always
    # (ST_IsValid over every row made each page's count cost a third of a second)
    conditions = [*collection.base_filter(), in_scope(collection.scope_code(), scope)]
    if bbox is not None:
        conditions.append(func.ST_Intersects(table.c.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    if cql2:
        conditions.append(cql2_clause(collection, cql2, queryables))
    if feature_id is not None:
        conditions.append(table.c[collection.key] == feature_id)
    where = and_(*conditions)
    cols = [table.c[collection.key].label("fid"), *(table.c[p] for p in props),
            func.ST_AsGeoJSON(table.c.geom, 7).label("geojson")]
    try:
        rows = conn.execute(select(*cols).where(where).order_by(table.c[collection.key])
                            .limit(limit).offset(offset)).mappings().all()
        if rows and len(rows) < limit:  # the last page: the count is known without a query
            matched = offset + len(rows)
        else:
            matched = conn.execute(select(func.count()).select_from(table).where(where)
                                   ).scalar_one()
    except DBAPIError as exc:
        if cql2 and _filter_fault(exc):
            raise FilterError(f"filter cannot be evaluated: {_pg_message(exc)}") from exc
        raise
    features = []
    for row in rows:
        properties_ = {p: _jsonable(row[p]) for p in props}
        features.append({"type": "Feature", "id": str(row["fid"]).strip(),
                         "geometry": json.loads(row["geojson"]), "properties": properties_})
    return features, int(matched)


# what a filter of the right types can still do wrong: a data exception (division by zero,
# out of range: class 22), or a type mismatch the checks above did not foresee
FILTER_FAULTS = ("22", "42883", "42804", "42846")


def _filter_fault(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or ""
    return not exc.connection_invalidated and state.startswith(FILTER_FAULTS)


def _pg_message(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or str(exc.orig).splitlines()[0])


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


