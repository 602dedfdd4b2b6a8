"""The 15-minute community life circle (GB 50180-2018): facility types and walking distances.

These are defaults; deployments may override them through configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["5min", "10min", "15min"]

LEVEL_DISTANCE_M: dict[Level, float] = {"5min": 300.0, "10min": 500.0, "15min": 1000.0}


@dataclass(frozen=True)
class FacilityType:
    name: str
    label: str
    level: Level

    @property
    def distance_m(self) -> float:
        return LEVEL_DISTANCE_M[self.level]


FACILITY_TYPES: dict[str, FacilityType] = {
    t.name: t
    for t in (
        FacilityType("middle_school", "中学", "15min"),
        FacilityType("health_centre", "社区卫生服务中心", "15min"),
        FacilityType("elderly_home", "养老院", "15min"),
        FacilityType("service_centre", "街道服务中心", "15min"),
        FacilityType("primary_school", "小学", "10min"),
        FacilityType("food_market", "菜市场", "10min"),
        FacilityType("kindergarten", "幼儿园", "5min"),
        FacilityType("nursery", "托儿所", "5min"),
        FacilityType("elderly_daycare", "老年人日间照料中心", "5min"),
        FacilityType("service_station", "社区服务站", "5min"),
        FacilityType("health_station", "卫生服务站", "5min"),
    )
}
