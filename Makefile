# The two entry points a new user needs; both set everything up first.
.PHONY: setup demo test bench

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/mitodet data stats ../shared/data/annotations/MIDOG++.json

test: setup
	.venv/bin/python -m pytest -n 2 -q

bench: setup
	for b in benchmarks/bench_*.py; do .venv/bin/python $$b || exit 1; done
