"""How OpenStreetMap features become gridmap layers: documented, configurable rules."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OsmRules(BaseModel):
    """Buildings → households, POIs → facilities.

    A residential building becomes one household record at its centroid whose ``residents``
    is ``footprint m² × levels × net_share / m2_per_person`` (at least 1); ``levels`` is the
    ``building:levels`` tag, else ``default_levels``. POIs map to facility types through
    ``poi_types``: ``"key=value": "type"``.
    """

    residential: list[str] = Field(default_factory=lambda: [
        "apartments", "residential", "house", "detached", "semidetached_house", "terrace",
        "dormitory", "yes"])
    m2_per_person: float = Field(default=35.0, gt=0)
    net_share: float = Field(default=0.8, gt=0, le=1)
    default_levels: float = Field(default=2.0, gt=0)
    poi_types: dict[str, str] = Field(default_factory=lambda: {
        "amenity=kindergarten": "kindergarten",
        "amenity=childcare": "nursery",
        "amenity=school": "primary_school",
        "amenity=college": "middle_school",
        "amenity=clinic": "health_station",
        "amenity=doctors": "health_station",
        "amenity=pharmacy": "health_station",
        "amenity=hospital": "health_centre",
        "amenity=nursing_home": "elderly_home",
        "social_facility=nursing_home": "elderly_home",
        "amenity=social_facility": "elderly_daycare",
        "amenity=community_centre": "service_station",
        "amenity=townhall": "service_centre",
        "amenity=marketplace": "food_market",
        "shop=supermarket": "food_market",
        "shop=greengrocer": "food_market",
    })
