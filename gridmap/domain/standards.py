"""Grid-size standards (DESIGN.md §2). Local rules differ: these are defaults that a
deployment overrides through settings (``GRIDMAP_STANDARD__URBAN_HOUSEHOLDS='[300, 500]'``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GridStandard(BaseModel):
    """Households and residents a grid should hold, by kind of area."""

    urban_households: tuple[int, int] = (300, 500)
    urban_max_residents: int = 2500
    rural_households: tuple[int, int] = Field(
        default=(200, 400), description="'about 300' households: ±100 by default")
    rural_max_residents: int = 2500
    micro_households: tuple[int, int] = (50, 80)
    households_per_worker: int = Field(default=500, description="full-time worker workload")

    def band(self, urban_rural: str | None, kind: str = "comprehensive") -> tuple[int, int]:
        if kind == "micro":
            return self.micro_households
        return self.rural_households if urban_rural == "rural" else self.urban_households

    def max_residents(self, urban_rural: str | None) -> int:
        return self.rural_max_residents if urban_rural == "rural" else self.urban_max_residents
