# The two commands a new user needs: `make demo` and `make test`.
.PHONY: setup demo test lint bench picture

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/gridmap demo

test:
	./scripts/setup.sh --browser
	.venv/bin/ruff check gridmap tests bench
	.venv/bin/mypy
	.venv/bin/pytest

bench: setup
	.venv/bin/python bench/bench_import.py
	.venv/bin/python bench/bench_assign.py
	.venv/bin/python bench/bench_coverage.py
	.venv/bin/python bench/bench_locate.py
	.venv/bin/python bench/bench_tiles.py
	.venv/bin/python bench/bench_incidents.py
	.venv/bin/python bench/bench_province.py
	.venv/bin/python bench/bench_locate_index.py
	.venv/bin/python bench/bench_reassign.py
	.venv/bin/python bench/bench_drafts.py
	.venv/bin/python bench/bench_suggest.py
	.venv/bin/python bench/bench_siting.py

picture: setup
	./scripts/setup.sh --browser
	./scripts/readme-picture.sh
