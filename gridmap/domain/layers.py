"""The layers gridmap imports and exports, and the columns each one needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gridmap.domain.lifecircle import FACILITY_TYPES

LayerName = Literal[
    "counties", "townships", "communities", "grids",
    "households", "facilities", "incidents", "workers",
]
ColumnType = Literal["code12", "code15", "text", "int", "bool", "timestamp"]
GeometryKind = Literal["polygon", "point", "none"]

CARE_FLAGS = ("elderly_alone", "disabled", "left_behind_child", "low_income")
INCIDENT_STATUSES = ("collected", "registered", "cancelled", "dispatched", "handling",
                     "reported", "verified", "closed", "evaluated")
WORKER_ROLES = ("grid_head", "full_time", "part_time", "supervisor")
GRID_KINDS = ("comprehensive", "exclusive", "micro")


@dataclass(frozen=True)
class LayerSpec:
    """What a layer's rows must hold. ``required`` columns must be present; ``optional``
    ones are filled with their default when absent."""

    name: LayerName
    table: str
    key: str
    geometry: GeometryKind
    required: dict[str, ColumnType]
    optional: dict[str, ColumnType] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    division_level: str | None = None

    @property
    def columns(self) -> dict[str, ColumnType]:
        return {**self.required, **self.optional}


_DIVISION_OPTIONAL: dict[str, ColumnType] = {"urban_rural": "text", "population": "int"}

LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("counties", "division", "code", "polygon",
                  {"code": "code12", "name": "text"}, _DIVISION_OPTIONAL,
                  choices={"urban_rural": ("urban", "rural")}, division_level="county"),
        LayerSpec("townships", "division", "code", "polygon",
                  {"code": "code12", "name": "text"}, _DIVISION_OPTIONAL,
                  choices={"urban_rural": ("urban", "rural")}, division_level="township"),
        LayerSpec("communities", "division", "code", "polygon",
                  {"code": "code12", "name": "text"}, _DIVISION_OPTIONAL,
                  choices={"urban_rural": ("urban", "rural")}, division_level="community"),
        LayerSpec("grids", "grid", "code", "polygon",
                  {"code": "code15", "name": "text"},
                  {"kind": "text", "parent_grid_code": "code15"},
                  defaults={"kind": "comprehensive"}, choices={"kind": GRID_KINDS}),
        LayerSpec("households", "household", "id", "point",
                  {"id": "text", "address": "text", "residents": "int"},
                  {**dict.fromkeys(CARE_FLAGS, "bool"), "head_name": "text", "phone": "text"},
                  defaults={**dict.fromkeys(CARE_FLAGS, False), "head_name": None,
                            "phone": None}),
        LayerSpec("facilities", "facility", "id", "point",
                  {"id": "text", "type": "text", "name": "text"}, {"capacity": "int"},
                  # coverage measures each type at its life-circle distance: a type it does
                  # not know would be counted nowhere, so it is refused at the door
                  choices={"type": tuple(FACILITY_TYPES)}),
        LayerSpec("incidents", "incident", "id", "point",
                  {"id": "text", "category": "text", "reported_at": "timestamp"},
                  {"description": "text", "status": "text"},
                  defaults={"description": "", "status": "collected"},
                  choices={"status": INCIDENT_STATUSES}),
        LayerSpec("workers", "grid_worker", "id", "none",
                  {"id": "text", "name": "text", "phone": "text", "role": "text"},
                  {"grid_code": "code15", "division_code": "code12"},
                  choices={"role": WORKER_ROLES}),
    )
}
