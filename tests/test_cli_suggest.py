"""`gridmap grids suggest` against a real PostGIS holding a demo community and its
households: the proposal partitions the community around the locked grid, the store is not
changed, bad input is refused with a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from tests.conftest import loaded_database
from tests.helpers import demo_area, demo_households_within, fingerprint, run_cli

COMMUNITY = "610199001001"
LOCK = "610199001001001"


@pytest.fixture(scope="module")
def suggest_db(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """The demo's divisions and grids, and the households of one community."""
    path = demo_households_within(demo_area("communities", COMMUNITY),
                                  tmp_path_factory.mktemp("hh"))
    yield from loaded_database(server_url, template_db, (
        "counties", "townships", "communities", "grids", "households"),
        files={"households": path})


def test_suggest_with_a_lock_writes_nothing(suggest_db: str, tmp_path: Path) -> None:
    before = fingerprint(suggest_db)
    out = tmp_path / "proposal.geojson"
    result = run_cli(suggest_db, "grids", "suggest", COMMUNITY, "--lock", LOCK,
                     "--out", str(out))
    assert result.exit_code in (0, 1), result.output
    assert "households →" in result.output and "band 300–500" in result.output
    assert fingerprint(suggest_db) == before
    proposal = gpd.read_file(out).to_crs(32649)
    communities = gpd.read_file(DEMO_DIR / DEMO_FILES["communities"]).to_crs(32649)
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).to_crs(32649)
    boundary = communities.loc[communities["code"] == COMMUNITY].geometry.iat[0]
    locked = grids.loc[grids["code"] == LOCK].geometry.iat[0]
    union = shapely.union_all(proposal.geometry.values)
    assert union.intersection(locked).buffer(-0.05).is_empty  # no more than mm seams
    assert union.symmetric_difference(boundary.difference(locked)).buffer(-0.05).is_empty
    assert (proposal["pieces"] == 1).all()


def test_suggest_into_a_draft(suggest_db: str) -> None:
    before = fingerprint(suggest_db)
    result = run_cli(suggest_db, "grids", "suggest", COMMUNITY, "--lock", LOCK, "--draft")
    assert result.exit_code in (0, 1), result.output
    assert "largest deviation from target" in result.output
    assert "compactness (Polsby-Popper)" in result.output
    assert "pieces per grid at most 1" in result.output  # contiguous
    assert "holds the suggestion" in result.output and "blocks publishing" not in result.output
    assert fingerprint(suggest_db) == before  # a draft publishes nothing
    draft = next(line.split()[1] for line in result.output.splitlines()
                 if line.startswith("draft ") and "holds the suggestion" in line)
    shown = run_cli(suggest_db, "drafts", "show", draft)
    assert shown.exit_code == 0
    rows = [line.split() for line in shown.output.splitlines()
            if line.strip().startswith(COMMUNITY) and "comprehensive" in line]
    assert LOCK in [r[0] for r in rows] and any(r[-1] == "locked" for r in rows)
    proposed = [r for r in rows if r[0] != LOCK]
    assert proposed and all(r[0].startswith(COMMUNITY) for r in proposed)
    diff = run_cli(suggest_db, "drafts", "diff", draft)
    assert diff.exit_code == 0 and "households changing grid" in diff.output


@pytest.mark.parametrize(("args", "message"), [
    (("999999999999",), "no village/community"),
    ((COMMUNITY, "--min", "500", "--max", "300"), "above its maximum"),
    ((COMMUNITY, "--lock", "610199001002001"), "not a grid of community"),
    ((COMMUNITY, "--lock", "610199001001006"), "only comprehensive grids"),
    (("610199001002",), "has no households"),
    ((COMMUNITY, "--out", "x.shp"), "must be a .geojson"),
])
def test_bad_input_is_refused(suggest_db: str, args: tuple[str, ...], message: str) -> None:
    result = run_cli(suggest_db, "grids", "suggest", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_an_infeasible_band_exits_1_and_says_why(suggest_db: str) -> None:
    result = run_cli(suggest_db, "grids", "suggest", COMMUNITY, "--min", "1500",
                     "--max", "1600")
    assert result.exit_code == 1
    assert "the band cannot be met" in result.output
