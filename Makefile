# The two entry points a new user needs; both set everything up first.
.PHONY: setup demo test lint bench reliability

setup:
	./scripts/setup.sh

# Detection with the bundled CA-RGB + CA-OD ensemble on the bundled CC0 example slide:
# writes MIDOG JSON (mm), CSV, QuPath GeoJSON and an overlay PNG to out/demo/.
demo: setup
	.venv/bin/mitodet detect mitodet/examples/CMU-1-Small-Region.svs --out out/demo --overlay --force

test: setup
	.venv/bin/python -m pytest -n 2 -q

# Every reliability case as a test (make test runs one per item); the table: benchmarks/reliability.py.
reliability: setup
	.venv/bin/python -m pytest -n 2 -q tests/reliability --reliability

# Lint and types (run by CI before the tests): ruff (pyflakes, bugbear, imports, pyupgrade, format), mypy.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: setup
	for b in benchmarks/bench_*.py; do .venv/bin/python $$b || exit 1; done
