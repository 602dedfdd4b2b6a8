"""Every notebook runs top to bottom (the coverage one against a real database, the one on
one's own data on generated data); any error fails the build. Stored without outputs; when
run, no cell's output is large (a map inlines its scripts: ~0.5 MB; 9,000 dots were 3 MB)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MAX_CELL_OUTPUT = 600_000  # bytes


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, demo_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", demo_db)
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "store notebooks without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    sizes = [len(json.dumps(c.get("outputs", []))) for c in code]
    assert max(sizes) < MAX_CELL_OUTPUT, sizes
    html = "".join(o.get("data", {}).get("text/html", "") for c in code
                   for o in c.get("outputs", []))
    assert "leaflet" in html  # the maps were drawn
    assert not re.search(r"(src|href)=\\?[\"']https?://", html), "a map loads from the network"
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    prose = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"[\u4e00-\u9fff]", prose) and "English" in prose  # both languages
