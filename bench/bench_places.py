"""Place search: gridmap's in-memory names with their pinyin vs reading the names from
PostGIS for every search.

Run: .venv/bin/python bench/bench_places.py   (the demo district in the local database:
`gridmap load-demo` first)

Prints the time to read the names once (what a change notice costs the next search), the time
of one search over them, and the obvious alternative: the same search with the names read
(search_places.sql) and their pinyin made on every request.
"""

from __future__ import annotations

from bench.timing import best
from gridmap.domain.access import EVERYTHING
from gridmap.places import PlaceIndex
from gridmap.settings import get_settings
from gridmap.store.db import open_database

KINDS = frozenset({"road", "township", "community", "grid", "facility"})
QUERIES = ("翠花路53号", "cuihua", "chl", "长乐街道中学", "晋昌社区", "鹤呜西路")


def main() -> None:
    engine = open_database(get_settings())
    index = PlaceIndex(engine)

    def reload() -> list:
        index._places = None  # as after a change notice
        return index.places()

    load, places = best(reload)

    def kept() -> None:
        for q in QUERIES:
            index.search(q, scope=EVERYTHING, kinds=KINDS)

    def fresh() -> None:
        for q in QUERIES:
            index._places = None
            index.search(q, scope=EVERYTHING, kinds=KINDS)

    warm, _ = best(kept)
    cold, _ = best(fresh)
    n = len(QUERIES)
    print(f"{len(places)} place names; reading them with their pinyin: {load * 1000:.0f} ms")
    print(f"search, names kept in memory:     {warm / n * 1000:6.1f} ms per query")
    print(f"search, names read every request: {cold / n * 1000:6.1f} ms per query")


if __name__ == "__main__":
    main()
