"""SQLAlchemy Core tables for the schema the migrations create (``store/sql/*.sql``).

The migrations are the source of truth; these objects let queries be written with
SQLAlchemy Core and GeoAlchemy2 instead of strings. ``tests/store/test_tables.py`` checks
that both agree.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


def _polygons(srid: int = 4326) -> Geometry:
    return Geometry("MULTIPOLYGON", srid=srid, spatial_index=False)


def _point() -> Geometry:
    return Geometry("POINT", srid=4326, spatial_index=False)


division = Table(
    "division", metadata,
    Column("code", String(12), primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("urban_rural", Text),
    Column("parent_code", String(12), ForeignKey("division.code")),
    Column("population", Integer),
    Column("geom", _polygons(), nullable=False),
    Column("geom_3857", _polygons(3857), Computed("ST_Transform(geom, 3857)")),
)

grid = Table(
    "grid", metadata,
    Column("code", String(15), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("community_code", String(12), ForeignKey("division.code"), nullable=False),
    Column("parent_grid_code", String(15), ForeignKey("grid.code")),
    Column("version", Integer, nullable=False),
    Column("geom", _polygons(), nullable=False),
    Column("geom_3857", _polygons(3857), Computed("ST_Transform(geom, 3857)")),
)

grid_version = Table(
    "grid_version", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("community_code", String(12), ForeignKey("division.code"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    Column("note", Text),
    Column("author", Text),
    Column("approver", Text),
    Column("restored_from", Integer),
    # what gridmap wrote, as keys and values (domain/notes.py); NULL: a person's note
    Column("note_notes", JSONB(none_as_null=True)),
)

grid_history = Table(
    "grid_history", metadata,
    Column("version_id", BigInteger, ForeignKey("grid_version.id"), primary_key=True),
    Column("code", String(15), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("parent_grid_code", String(15)),
    Column("geom", _polygons(), nullable=False),
)

grid_worker = Table(
    "grid_worker", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("phone", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("grid_code", String(15), ForeignKey("grid.code")),
    Column("division_code", String(12), ForeignKey("division.code")),
)

household = Table(
    "household", metadata,
    Column("id", Text, primary_key=True),
    Column("address", Text, nullable=False),
    Column("residents", SmallInteger, nullable=False),
    Column("elderly_alone", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("left_behind_child", Boolean, nullable=False),
    Column("low_income", Boolean, nullable=False),
    Column("grid_code", String(15), ForeignKey("grid.code")),
    Column("head_name", Text),
    Column("phone", Text),
    Column("geom", _point(), nullable=False),
    # the partition key (migration 0015): the county the point lies in, '000000' for none
    Column("county_code", String(6), primary_key=True),
)

facility = Table(
    "facility", metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("capacity", Integer),
    Column("grid_code", String(15), ForeignKey("grid.code")),
    Column("geom", _point(), nullable=False),
)

incident = Table(
    "incident", metadata,
    Column("id", Text, primary_key=True),
    Column("category", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("grid_code", String(15), ForeignKey("grid.code")),
    Column("geom", _point(), nullable=False),
    Column("community_code", String(12), ForeignKey("division.code")),
    Column("township_code", String(12), ForeignKey("division.code")),
    Column("assignee", Text, ForeignKey("grid_worker.id")),
    Column("reporter", Text),
    Column("urgent", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("dispatch_due", DateTime(timezone=True)),
    Column("handle_due", DateTime(timezone=True)),
    Column("verify_due", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
)

incident_event = Table(
    "incident_event", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("incident_id", Text, ForeignKey("incident.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text),
    Column("role", Text),
    Column("action", Text, nullable=False),
    Column("from_stage", Text),
    Column("to_stage", Text, nullable=False),
    Column("grid_code", String(15)),
    Column("assignee", Text),
    Column("note", Text),
    # what gridmap wrote, as keys and values (domain/notes.py); NULL: a person's note
    Column("notes", JSONB(none_as_null=True)),
)

incident_photo = Table(
    "incident_photo", metadata,
    Column("id", Text, primary_key=True),
    Column("incident_id", Text, ForeignKey("incident.id"), nullable=False),
    Column("event_id", BigInteger, ForeignKey("incident_event.id"), nullable=False),
    Column("media_type", Text, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("taken_by", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

street_node = Table(
    "street_node", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("geom", _point(), nullable=False),
)

street_edge = Table(
    "street_edge", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("u", BigInteger, ForeignKey("street_node.id"), nullable=False),
    Column("v", BigInteger, ForeignKey("street_node.id"), nullable=False),
    Column("length_m", Float, nullable=False),
    Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False)),
    Column("name", Text),
)

building = Table(
    "building", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text),
    Column("address", Text),
    Column("source", Text, nullable=False),
    Column("geom", _polygons(), nullable=False),
    Column("geom_3857", _polygons(3857), Computed("ST_Transform(geom, 3857)")),
)

grid_load = Table(
    "grid_load", metadata,
    Column("grid_code", String(15), ForeignKey("grid.code"), primary_key=True),
    Column("households", Integer, nullable=False),
    Column("residents", Integer, nullable=False),
)

app_user = Table(
    "app_user", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
)

user_division = Table(
    "user_division", metadata,
    Column("user_id", BigInteger, ForeignKey("app_user.id"), primary_key=True),
    Column("code", Text, primary_key=True),
)

auth_session = Table(
    "auth_session", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("app_user.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("client", Text),
)

api_key = Table(
    "api_key", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("app_user.id"), nullable=False),
    Column("label", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

sign_in_failure = Table(
    "sign_in_failure", metadata,
    Column("name", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", Text),
    Column("role", Text),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("divisions", ARRAY(Text), nullable=False),
    Column("row_ids", ARRAY(Text)),
    Column("row_count", Integer),
    Column("client", Text),
    Column("detail", Text),
    # what gridmap wrote, as keys and values (domain/notes.py); NULL: a text as written
    Column("detail_notes", JSONB(none_as_null=True)),
)

# indexes a bulk import left to build after its commit, until built (migration 0020)
pending_index = Table(
    "pending_index", metadata,
    Column("name", Text, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)
