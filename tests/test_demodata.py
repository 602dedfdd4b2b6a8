"""The committed demo district: regenerated identically, partitioned exactly, to standard."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridmap.demodata import BASEMAP_FILES, DEMO_DIR, DEMO_FILES, generate
from gridmap.domain.codes import reading_order


@pytest.fixture(scope="module")
def demo() -> dict[str, gpd.GeoDataFrame]:
    return generate().layers


def test_committed_files_are_what_the_seeded_script_makes(demo: dict) -> None:
    for name in ("grids", "households", "communities"):
        path = DEMO_DIR / DEMO_FILES[name]
        committed = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
        made = demo[name].reset_index(drop=True)
        assert len(committed) == len(made)
        assert committed.geometry.geom_equals_exact(made.geometry, tolerance=0).all()
        assert (committed["code" if "code" in made else "id"].to_numpy()
                == made["code" if "code" in made else "id"].to_numpy()).all()


def test_committed_basemap_is_what_the_seeded_script_makes(demo: dict) -> None:
    for name, key in (("buildings", ["id", "name", "address"]),
                      ("streets", ["u", "v", "length", "name"])):
        committed = gpd.read_parquet(DEMO_DIR / BASEMAP_FILES[name])
        made = demo[name].reset_index(drop=True)
        assert len(committed) == len(made) > 500
        assert committed.geometry.geom_equals_exact(made.geometry, tolerance=0).all()
        assert committed[key].equals(made[key])


def test_every_household_lives_in_a_building_and_the_streets_connect(demo: dict) -> None:
    buildings = demo["buildings"]
    assert buildings.geometry.is_valid.all()
    households = demo["households"]
    inside = gpd.sjoin(households, buildings, predicate="within", how="inner")
    assert inside["id_left"].nunique() == len(households)
    # blocks carry their compound's address and their own name; village houses neither
    named = buildings.dropna(subset=["name"])
    assert all(a.endswith(n) for a, n in zip(named["address"], named["name"], strict=True))
    assert buildings.drop(named.index)["address"].isna().all()
    streets = demo["streets"]
    ends = pd.concat([streets["u"], streets["v"]])
    assert (ends.value_counts() >= 1).all() and streets["length"].gt(0).all()
    # one connected network: every node reached from any other along the streets
    size = int(ends.max()) + 1
    graph = coo_matrix((np.ones(len(streets)), (streets["u"], streets["v"])),
                       shape=(size, size))
    _, piece = connected_components(graph, directed=False)
    assert len(set(piece[ends.unique()])) == 1


def test_streets_are_named_and_each_compound_lies_along_its_street(demo: dict) -> None:
    streets = demo["streets"]
    named = streets.dropna(subset=["name"])
    assert named["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,4}").all()
    assert len(named) > len(streets) / 2 and named["name"].nunique() > 100
    # a name is one street: its edges connected, end to end
    for _, edges in named.groupby("name"):
        nodes = pd.Index(pd.concat([edges["u"], edges["v"]]).unique())
        graph = coo_matrix((np.ones(len(edges)), (nodes.get_indexer(edges["u"]),
                                                  nodes.get_indexer(edges["v"]))),
                           shape=(len(nodes), len(nodes)))
        assert connected_components(graph, directed=False)[0] == 1, edges["name"].iat[0]
    # a compound's address (翠华路152号…) names a street along the edge of its grid, and one
    # compound only
    blocks = demo["buildings"].dropna(subset=["address"])
    parts = blocks["address"].str.extract(r"^(?P<road>\D+?)(?P<number>\d+)号")
    assert parts.notna().all().all()
    grids = demo["grids"][demo["grids"]["kind"] == "comprehensive"].to_crs(32649)
    points = gpd.GeoDataFrame(parts, geometry=blocks.geometry.representative_point(),
                              crs=4326).to_crs(32649)
    placed = gpd.sjoin(points, grids[["code", "geometry"]], predicate="within")
    assert len(placed) == len(blocks)
    compounds = placed.drop_duplicates(["road", "number", "code"])
    assert not compounds.duplicated(["road", "number"]).any()  # each number given once
    metric = named.to_crs(32649)
    edges_of = {road: shapely.union_all(e.geometry.values) for road, e in metric.groupby("name")}
    rims = grids.set_index("code").boundary
    for c in compounds.itertuples():
        assert edges_of[c.road].intersection(rims[c.code].buffer(0.5)).length > 10, c
    # numbers along a street: odd on one side, even on the other
    assert compounds["number"].astype(int).mod(2).nunique() == 2


def test_grids_partition_each_community_exactly(demo: dict) -> None:
    grids = demo["grids"]
    comp = grids[grids["kind"] == "comprehensive"]
    assert shapely.coverage_is_valid(comp.geometry.values)  # no overlaps, matching edges
    for com in demo["communities"].itertuples():
        mine = comp[comp["code"].str[:12] == com.code]
        union = shapely.coverage_union_all(mine.geometry.values)
        assert union.symmetric_difference(com.geometry).area == pytest.approx(0, abs=1e-12)
    county = demo["counties"].geometry.iat[0]
    union = shapely.coverage_union_all(demo["communities"].geometry.values)
    assert union.symmetric_difference(county).area == pytest.approx(0, abs=1e-12)


def test_exclusive_grids_sit_inside_their_comprehensive_grid(demo: dict) -> None:
    grids = demo["grids"].set_index("code")
    exclusive = grids[grids["kind"] == "exclusive"]
    assert len(exclusive) >= 5
    for code, row in exclusive.iterrows():
        assert grids.geometry[row["parent_grid_code"]].contains(row.geometry), code


def test_codes_and_numbering(demo: dict) -> None:
    grids = demo["grids"]
    assert grids["code"].str.fullmatch(r"[0-9]{15}").all()
    comp = grids[grids["kind"] == "comprehensive"].to_crs(32649)
    for _, mine in comp.groupby(comp["code"].str[:12]):
        mine = mine.sort_values("code")
        cents = mine.geometry.centroid
        order = reading_order(cents.x.to_numpy(), cents.y.to_numpy(), band=250)
        assert order == list(range(len(mine)))
        assert mine["code"].str[12:].astype(int).tolist() == list(range(1, len(mine) + 1))


def test_households_per_grid_within_the_standard(demo: dict) -> None:
    grids = demo["grids"]
    comp = grids[grids["kind"] == "comprehensive"]
    hh = demo["households"]
    joined = gpd.sjoin(hh, comp, predicate="within", how="left")
    assert joined["code"].notna().all()
    per = joined.groupby("code").agg(households=("id_left", "size") if "id_left" in joined
                                     else ("id", "size"), residents=("residents", "sum"))
    urban_codes = set(demo["communities"].query("urban_rural == 'urban'")["code"])
    urban = per.index.str[:12].isin(urban_codes)
    assert per.loc[urban, "households"].between(300, 500).all()
    assert per.loc[~urban, "households"].between(200, 350).all()
    assert (per["residents"] <= 2500).all()
    assert 90_000 <= len(hh) <= 120_000
    assert pd.Series(np.asarray(demo["facilities"]["type"])).nunique() >= 10


def test_households_carry_a_head_of_household_and_a_phone(demo: dict) -> None:
    hh = demo["households"]
    assert hh["head_name"].notna().all() and hh["phone"].notna().all()
    assert hh["head_name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert hh["head_name"].nunique() > 1_000  # plenty of different names, not one repeated
    assert hh["phone"].str.fullmatch(r"[0-9+\- ]{5,20}").all()  # the household.phone CHECK
    assert hh["phone"].str.fullmatch(r"1[3-9][0-9]{9}").all()  # an 11-digit mobile number
    assert hh["phone"].is_unique
    assert hh["phone"].str[1].nunique() == 7
    committed = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    for col in ("head_name", "phone"):
        assert (committed[col].to_numpy() == hh[col].to_numpy()).all()


def test_committed_workers_are_what_the_seeded_script_makes(demo: dict) -> None:
    """The households' names and phones come from a stream of their own: drawing them left
    the workers (drawn from the main stream) as they were."""
    committed = pd.read_csv(DEMO_DIR / DEMO_FILES["workers"], dtype=str, keep_default_na=False)
    made = demo["workers"].astype(object).where(demo["workers"].notna(), "").astype(str)
    assert committed.columns.tolist() == made.columns.tolist()
    assert (committed.to_numpy() == made.to_numpy()).all()
    assert committed["phone"].str.fullmatch(r"13[0-9]{9}").all()
