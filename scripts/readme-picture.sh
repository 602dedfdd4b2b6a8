#!/bin/sh
# The README's picture (docs/demo-map.png): the Chinese map page of the demo district with its
# basemap and labels, as the browser test of the basemap draws it (desktop, signed in as a
# dispatcher), copied from the test's screenshot.
set -eu
cd "$(dirname "$0")/.."
shots=$(mktemp -d)
GRIDMAP_SCREENSHOT_DIR="$shots" .venv/bin/pytest -q \
    "tests/api/test_basemap_page.py::test_streets_buildings_and_labels_drawn_offline[zh-CN-desktop]"
cp "$shots/readme-demo-map.png" docs/demo-map.png
rm -r "$shots"
echo "docs/demo-map.png updated"
