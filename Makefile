# The two commands of the README:
#   make demo   set everything up, build a sample product with superbuild
#   make test   set everything up, run lint (ruff), types (mypy) and the tests (pytest)
.PHONY: demo test lint setup bench clean

VENV := .venv
BIN := $(VENV)/bin

setup:
	@scripts/bootstrap.sh --rpm

demo: setup
	$(BIN)/python -m superbuild.testing.demo

lint: setup
	$(BIN)/ruff check superbuild tests bench scripts
	$(BIN)/ruff format --check superbuild tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/bench_changed.py
	$(BIN)/python bench/bench_build.py
	$(BIN)/python bench/bench_status.py
	$(BIN)/python bench/bench_dask.py
	$(BIN)/python bench/bench_rpm.py
	$(BIN)/python bench/bench_scale.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
