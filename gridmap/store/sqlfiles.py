"""Hand-written SQL lives in ``.sql`` files beside the code, named for what they do."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def read_sql(name: str, package: str = "gridmap.store.sql") -> str:
    """The text of ``<package>/<name>`` (``name`` with its ``.sql`` suffix)."""
    return files(package).joinpath(name).read_text(encoding="utf-8")
