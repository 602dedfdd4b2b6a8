"""Progress bars of the long commands go to stderr, results to stdout; --quiet shows none."""

from __future__ import annotations

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from tests.helpers import run_cli


def test_progress_goes_to_stderr_and_quiet_prints_none(fresh_db: str) -> None:
    shown = run_cli(fresh_db, "import", "counties", str(DEMO_DIR / DEMO_FILES["counties"]))
    assert shown.exit_code == 0, shown.output
    assert "import counties" in shown.stderr and "100%" in shown.stderr
    assert "import counties" not in shown.stdout and "counties" in shown.stdout  # the result
    for layer in ("townships", "communities", "grids"):
        publish = ["--publish"] if layer == "grids" else []  # grids go through drafts
        quiet = run_cli(fresh_db, "--quiet", "import", layer, str(DEMO_DIR / DEMO_FILES[layer]),
                        *publish)
        assert quiet.exit_code == 0, quiet.output
        assert quiet.stderr == "" and (layer in quiet.stdout or "published" in quiet.stdout)
    assigned = run_cli(fresh_db, "assign", "facilities")
    assert assigned.exit_code == 0, assigned.output
    assert "assign" in assigned.stderr and "1/1" in assigned.stderr  # a step a layer
    assert "facilities" in assigned.stdout and "%" not in assigned.stdout
    quiet = run_cli(fresh_db, "-q", "assign", "facilities")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "facilities" in quiet.stdout
    refused = run_cli(fresh_db, "-q", "assign", "parcels")  # errors still say why
    assert refused.exit_code != 0 and "parcels" in refused.output
