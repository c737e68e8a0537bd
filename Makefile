# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
.PHONY: setup demo test lint

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/avatar-forcing demo

test: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider tests; rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" && rc=0; exit $$rc

lint: setup
	.venv/bin/ruff check avatar_forcing tests scripts examples
